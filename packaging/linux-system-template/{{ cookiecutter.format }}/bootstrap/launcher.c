/*
 * /usr/bin/{{ cookiecutter.app_name }}: starts {{ cookiecutter.formal_name }} on the distribution's Python.
 *
 * The package ships the app's code in <prefix>/APP_DIR/app and its Python
 * dependencies in <prefix>/APP_DIR/app_packages; the interpreter and the
 * standard library are the system's (the package depends on libpython).
 * The interpreter is configured "isolated": no PYTHON* environment variables,
 * no user site-packages and no system dist-packages, so what runs is exactly
 * what the package installed, whatever else is on the machine.
 */
#include <Python.h>

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(PyConfig *config, PyStatus status) {
    PyConfig_Clear(config);
    if (PyStatus_IsExit(status)) {
        return status.exitcode;
    }
    Py_ExitStatusException(status); /* prints the reason and exits */
    return 1;
}

static PyStatus add_search_path(PyConfig *config, const char *path) {
    wchar_t *wide = Py_DecodeLocale(path, NULL);
    if (wide == NULL) {
        return PyStatus_NoMemory();
    }
    PyStatus status = PyWideStringList_Append(&config->module_search_paths, wide);
    PyMem_RawFree(wide);
    return status;
}

int main(int argc, char *argv[]) {
    char exe[PATH_MAX];
    char prefix[PATH_MAX];
    char app_path[PATH_MAX];
    char packages_path[PATH_MAX];
    PyPreConfig preconfig;
    PyConfig config;
    PyStatus status;

    /* Paths are relative to where the binary really is (<prefix>/bin), so a
       package relocated under another prefix still finds its code. */
    if (realpath("/proc/self/exe", exe) == NULL) {
        perror("{{ cookiecutter.app_name }}: cannot find its own executable");
        return 1;
    }
    char *bin_dir = dirname(strdup(exe));
    snprintf(prefix, sizeof prefix, "%s", dirname(bin_dir));
    if (snprintf(app_path, sizeof app_path, "%s/%s/app", prefix, APP_DIR) >= (int)sizeof app_path ||
        snprintf(packages_path, sizeof packages_path, "%s/%s/app_packages", prefix, APP_DIR) >=
            (int)sizeof packages_path) {
        fprintf(stderr, "{{ cookiecutter.app_name }}: installed under too long a path: %s\n", prefix);
        return 1;
    }

    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;        /* file names and stdio are UTF-8 whatever the locale */
    preconfig.configure_locale = 1; /* but Qt still gets the user's locale */
    status = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }

    PyConfig_InitIsolatedConfig(&config);
    config.buffered_stdio = 0;   /* output reaches a terminal or journal at once */
    config.write_bytecode = 0;   /* /usr is read-only for the user; never litter it */
    config.site_import = 0;      /* site would add the system's dist-packages */
    config.module_search_paths_set = 1;

    status = PyConfig_SetBytesString(&config, &config.executable, exe);
    if (PyStatus_Exception(status)) {
        return fail(&config, status);
    }
    /* BRIEFCASE_MAIN_MODULE lets `briefcase run --test` start the test suite. */
    const char *module = getenv("BRIEFCASE_MAIN_MODULE");
    status = PyConfig_SetBytesString(&config, &config.run_module, module ? module : APP_MODULE);
    if (PyStatus_Exception(status)) {
        return fail(&config, status);
    }
    status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (PyStatus_Exception(status)) {
        return fail(&config, status);
    }
    const char *paths[] = {STDLIB_DIR, DYNLOAD_DIR, app_path};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        status = add_search_path(&config, paths[i]);
        if (PyStatus_Exception(status)) {
            return fail(&config, status);
        }
    }

    status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }

    /* app_packages is added as a site directory (not a bare path) so the .pth
       files some packages install there are processed, as in a venv. */
    PyObject *site = PyImport_ImportModule("site");
    PyObject *added = site ? PyObject_CallMethod(site, "addsitedir", "s", packages_path) : NULL;
    if (added == NULL) {
        PyErr_Print();
        fprintf(stderr, "{{ cookiecutter.app_name }}: cannot add %s to the module path\n",
                packages_path);
        Py_Finalize();
        return 1;
    }
    Py_DECREF(added);
    Py_DECREF(site);

    /* Runs the module as `python -m` would: SystemExit gives the exit status,
       any other exception prints its traceback and exits 1. */
    return Py_RunMain();
}
