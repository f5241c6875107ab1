"""A repository rule exposing Debian's system libraries as cc_library targets.

Each entry maps a target name to pkg-config module names (or raw -l flags, for
libraries that ship no .pc file). Flags are resolved once, at fetch time.
"""

def _pkg_config(ctx, modules, what):
    res = ctx.execute(["pkg-config", what] + modules)
    if res.return_code != 0:
        fail("pkg-config %s %s failed (run tools/setup.sh): %s" % (what, " ".join(modules), res.stderr))
    return res.stdout.strip().split(" ") if res.stdout.strip() else []

# Libraries declared here rather than in WORKSPACE's dict: the cloud backends'
# HTTP (libcurl), signing (OpenSSL's libcrypto) and XML (tinyxml2) libraries.
# The WORKSPACE dict wins on a name clash.
_DEFAULT_LIBS = {
    "curl": "libcurl",
    "crypto": "libcrypto",
    "tinyxml2": "tinyxml2",
}

def _system_libs_impl(ctx):
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    libs = dict(_DEFAULT_LIBS)
    libs.update(ctx.attr.libs)
    for name, spec in libs.items():
        words = spec.split(" ")
        modules = [w for w in words if not w.startswith("-")]
        raw = [w for w in words if w.startswith("-")]
        copts = []
        linkopts = list(raw)
        if modules:
            copts = [f for f in _pkg_config(ctx, modules, "--cflags") if f]
            linkopts = [f for f in _pkg_config(ctx, modules, "--libs") if f] + linkopts
        defines = [c[2:] for c in copts if c.startswith("-D")]
        includes = [c for c in copts if c.startswith("-I")]
        lines.append("cc_library(")
        lines.append('    name = "%s",' % name)
        lines.append("    defines = %s," % repr(defines))
        lines.append("    copts = %s," % repr(includes))
        lines.append("    linkopts = %s," % repr(linkopts))
        lines.append(")")
        lines.append("")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(lines))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {"libs": attr.string_dict(mandatory = True)},
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)
