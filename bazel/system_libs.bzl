"""A repository rule exposing Debian's system libraries as cc_library targets.

Each entry maps a target name to pkg-config module names (or raw -l flags, for
libraries that ship no .pc file). Flags are resolved once, at fetch time.
"""

def _pkg_config(ctx, modules, what):
    res = ctx.execute(["pkg-config", what] + modules)
    if res.return_code != 0:
        fail("pkg-config %s %s failed (run tools/setup.sh): %s" % (what, " ".join(modules), res.stderr))
    return res.stdout.strip().split(" ") if res.stdout.strip() else []

# Libraries linked from Debian's static archives (.a) rather than shared objects:
# `pkg-config --static --libs` names every archive a module needs; each -lX that
# has a libX.a becomes -l:libX.a inside one --start-group (so their order does
# not matter); _STATIC_KEEP_SHARED and libraries without an archive stay -lX.
# For weft-agent (see agent/BUILD.bazel): a static gRPC (with TLS), protobuf and Abseil touch
# far fewer pages than ~70 shared objects with their relocations. The Abseil
# modules are WORKSPACE's "absl" set, so none of the binary's Abseil stays shared.
_STATIC_LIBS = {
    "grpcpp_static": " ".join([
        "grpc++ protobuf",
        "absl_strings absl_str_format absl_status absl_statusor absl_synchronization absl_time",
        "absl_random_random absl_flat_hash_map absl_hash absl_flags absl_flags_parse",
        "absl_flags_reflection absl_flags_usage absl_flags_marshalling",
    ]),
}

# Kept shared: glibc's own libraries, and zlib and OpenSSL, which other shared
# libraries in the agent (cpp-httplib, libcurl) load anyway: one copy of each.
_STATIC_KEEP_SHARED = ["atomic", "crypto", "dl", "m", "pthread", "rt", "ssl", "z"]

def _static_linkopts(ctx, modules, raw):
    archives = []
    shared = []
    for flag in _pkg_config(ctx, modules + ["--static"], "--libs") + raw:
        if not flag.startswith("-l"):
            continue  # --push-state,--as-needed around -latomic: kept shared below anyway
        name = flag[2:]
        found = ctx.execute(["gcc", "-print-file-name=lib%s.a" % name]).stdout.strip()
        if name in _STATIC_KEEP_SHARED or not found.startswith("/"):
            if flag not in shared:
                shared.append(flag)
        elif "-l:lib%s.a" % name not in archives:
            archives.append("-l:lib%s.a" % name)
    return ["-Wl,--start-group"] + archives + ["-Wl,--end-group"] + shared

def _system_libs_impl(ctx):
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    libs = dict(_STATIC_LIBS)
    libs.update(ctx.attr.libs)
    for name, spec in libs.items():
        words = spec.split(" ")
        modules = [w for w in words if not w.startswith("-")]
        raw = [w for w in words if w.startswith("-")]
        copts = []
        linkopts = list(raw)
        if modules:
            copts = [f for f in _pkg_config(ctx, modules, "--cflags") if f]
            if name in _STATIC_LIBS:
                linkopts = _static_linkopts(ctx, modules, raw)
            else:
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
