"""Access tokens for Chroma servers, one per server address, in the system
keyring (``storage/secrets.py``, as the model server's API key), never in
the settings file.

A token typed in Add a server collection… is stored under the server's
address and sent to that server only. ``FOOTNOTE_CHROMA_TOKEN`` still
applies to every server that has no token of its own (scripts, CI, a
headless machine). Where there is no keyring, the token is kept in memory
for this session only (``ServerLibrary.use_token``) and the user is told in
one sentence, as for the model server's key.
"""

from __future__ import annotations

import os

from retrieval.chroma_server import normalized_url
from storage.secrets import SecretNotKept, forget_secret, load_secret, save_secret

# The keyring entry: this service name, the server's address as the user name.
KEYRING_SERVICE = "Footnote Chroma server"
CHROMA_TOKEN_ENV = "FOOTNOTE_CHROMA_TOKEN"

NO_KEYRING_TEXT = (
    "This computer has no system keyring to keep the Chroma server's access token in, so it "
    "is used only until Footnote closes (never written to a file); type it again next time, "
    f"or set {CHROMA_TOKEN_ENV}."
)
REFUSED_TEXT = (
    "The system keyring refused to store the Chroma server's access token, so it is used only "
    "until Footnote closes; unlock the keyring and add the collection again to keep it."
)


def chroma_token(url: str) -> str | None:
    """The access token for the Chroma server at ``url``: its own from the
    keyring, else ``FOOTNOTE_CHROMA_TOKEN``, else None."""
    own = load_secret(KEYRING_SERVICE, normalized_url(url))
    return own or os.environ.get(CHROMA_TOKEN_ENV, "").strip() or None


def save_chroma_token(url: str, token: str) -> str | None:
    """Keep ``token`` for ``url`` in the keyring (an empty one removes it);
    returns None, or the sentence that says why it was not kept."""
    try:
        save_secret(KEYRING_SERVICE, normalized_url(url), token)
    except SecretNotKept as exc:
        return NO_KEYRING_TEXT if exc.reason == "no_keyring" else REFUSED_TEXT
    return None


def forget_chroma_token(url: str) -> None:
    forget_secret(KEYRING_SERVICE, normalized_url(url))
