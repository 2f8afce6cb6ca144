"""The installed app's entry module (briefcase runs ``python -m footnote``).

The code lives in the top-level ``app``, ``engine``, ``retrieval`` and
``storage`` packages; this package only gives the installers a distinctive name (a binary
and a Debian package called ``footnote``, not ``app``).
"""
