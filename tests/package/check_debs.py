#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Builds the Debian packages with cpack and checks them as a user would meet them:
metadata, file lists, conffiles, maintainer scripts, the licence, the unpacked binary, the
unit file, and a find_package consumer built against nothing but the unpacked dev package."""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys

from check_licence import debian_copyright_errors, single_header_errors

# The project maintains the packages under its own name, with no (invented) address.
MAINTAINER = "parley"

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print(f"FAIL: {message}", file=sys.stderr)
    return condition


def run(*command, cwd=None, env=None):
    print("+ " + " ".join(str(c) for c in command), flush=True)
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        print(done.stdout)
        sys.exit(f"check_debs: command failed ({done.returncode}): {' '.join(str(c) for c in command)}")
    return done.stdout


def fields(deb):
    """The control fields of a .deb as a dict."""
    out, key = {}, None
    for line in run("dpkg-deb", "--field", deb).splitlines():
        if line.startswith(" ") and key:
            out[key] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            out[key] = value.strip()
    return out


def contents(deb):
    """Paths in the data archive, absolute, directories without a trailing slash."""
    paths = set()
    for line in run("dpkg-deb", "--contents", deb).splitlines():
        path = line.split(None, 5)[5].split(" -> ")[0]
        paths.add("/" + path.lstrip("./").rstrip("/"))
    return paths


def depends_names(depends):
    """Package names in a Depends field, alternatives included, versions dropped."""
    names = set()
    for group in depends.split(","):
        for alternative in group.split("|"):
            if alternative.strip():
                names.add(alternative.split("(")[0].strip().split(":")[0])
    return names


def check_package(deb, name, version, arch, depends, files, absent):
    info = fields(deb)
    check(info.get("Package") == name, f"{deb.name}: Package is {info.get('Package')}, not {name}")
    check(info.get("Version") == version, f"{deb.name}: Version is {info.get('Version')}, not {version}")
    check(info.get("Architecture") == arch, f"{deb.name}: Architecture is {info.get('Architecture')}, not {arch}")
    check(info.get("Maintainer") == MAINTAINER, f"{deb.name}: Maintainer is {info.get('Maintainer')}, not {MAINTAINER}")
    got = depends_names(info.get("Depends", ""))
    for dependency in depends:
        check(dependency in got, f"{deb.name}: Depends ({info.get('Depends')}) lacks {dependency}")
    paths = contents(deb)
    # Debian policy 12.5: every package ships its licence as /usr/share/doc/<package>/copyright.
    for path in files + [f"/usr/share/doc/{name}/copyright"]:
        check(path in paths, f"{deb.name}: missing {path}")
    for path in absent:
        check(not any(p == path or p.startswith(path + "/") for p in paths), f"{deb.name}: must not contain {path}")
    print(f"{deb.name}: {name} {version} {arch}; Depends: {info.get('Depends')}")
    return paths


def check_maintainer_scripts(deb, work):
    control = work / (deb.stem + ".control")
    run("dpkg-deb", "--control", deb, control)
    conffiles = (control / "conffiles").read_text().split() if (control / "conffiles").is_file() else []
    check(conffiles == ["/etc/default/parley"], f"{deb.name}: conffiles are {conffiles}, not /etc/default/parley")
    shellcheck = shutil.which("shellcheck")
    for script in ("postinst", "prerm", "postrm"):
        path = control / script
        if not check(path.is_file(), f"{deb.name}: no {script}"):
            continue
        check(os.access(path, os.X_OK), f"{deb.name}: {script} is not executable")
        run("sh", "-n", path)
        if shellcheck:
            run(shellcheck, "-s", "sh", "-S", "warning", path)
    if not shellcheck:
        print("shellcheck not available: maintainer scripts only checked with sh -n")


def check_licence(root, name, licence_text):
    """The unpacked package's copyright file says MIT, with LICENSE's text, in Debian's format."""
    copyright_file = root / f"usr/share/doc/{name}/copyright"
    if not check(copyright_file.is_file(), f"{name}: no /usr/share/doc/{name}/copyright"):
        return
    for error in debian_copyright_errors(copyright_file.read_text(encoding="utf-8"), licence_text,
                                         f"{name}: /usr/share/doc/{name}/copyright"):
        check(False, error)
    print(f"{name}: /usr/share/doc/{name}/copyright declares MIT with LICENSE's text")


def check_third_party_notices(root):
    """The code compiled into parley-tools from other projects is named with its licence; the
    two whose licences ask for their notice in binary form have their full text."""
    notices = root / "usr/share/doc/parley-tools/THIRD-PARTY-NOTICES"
    if not check(notices.is_file(), "parley-tools: no /usr/share/doc/parley-tools/THIRD-PARTY-NOTICES"):
        return
    text = notices.read_text(encoding="utf-8")
    for name, licence in (("CLI11", "BSD-3-Clause"), ("nlohmann/json", "MIT"), ("asio", "Boost Software License"),
                          ("tl::expected", "CC0-1.0")):
        check(name in text and licence in text, f"parley-tools: THIRD-PARTY-NOTICES does not name {name} ({licence})")
    for sentence in ("Redistributions in binary form must reproduce the above copyright",
                     "The above copyright notice and this permission notice shall be included"):
        check(sentence in text, f"parley-tools: THIRD-PARTY-NOTICES lacks the licence text with {sentence!r}")
    print("parley-tools: THIRD-PARTY-NOTICES names CLI11, nlohmann/json, asio and tl::expected")


def verify_unit(root):
    unit = root / "lib/systemd/system/parley-server.service"
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("systemd-analyze not available: parley-server.service not verified")
        return
    # verify checks ExecStart= against this machine's file system, where parley-tools is
    # not installed; point it at the unpacked binary, and man at the unpacked man page.
    text = unit.read_text()
    check("ExecStart=/usr/bin/parley-tools server" in text, "the unit does not run /usr/bin/parley-tools server")
    for line in ("User=parley", "StateDirectory=parley", "EnvironmentFile=-/etc/default/parley",
                 "Environment=PARLEY_DB_FILE=/var/lib/parley/parley.db", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"):
        check(line in text.splitlines(), f"the unit lacks {line}")
    staged = root.parent / "verify" / "parley-server.service"
    staged.parent.mkdir(exist_ok=True)
    staged.write_text(text.replace("/usr/bin/parley-tools", str(root / "usr/bin/parley-tools")))
    env = dict(os.environ, MANPATH=str(root / "usr/share/man"))
    done = subprocess.run([analyze, "verify", str(staged)], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # verify warns about unknown keys yet exits 0, so any output counts as a finding.
    check(done.returncode == 0 and not done.stdout.strip(),
          f"systemd-analyze verify parley-server.service:\n{done.stdout}")
    print("systemd-analyze verify: parley-server.service is clean")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", type=pathlib.Path, required=True)
    parser.add_argument("--source-dir", type=pathlib.Path, required=True)
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--cmake", default="cmake")
    parser.add_argument("--cpack", default="cpack")
    parser.add_argument("--generator", default="")
    parser.add_argument("--cxx", default="")
    parser.add_argument("--prefix-path", default="", help="'|'-separated prefixes for the consumer's dependencies")
    parser.add_argument("--build-tools", required=True, help="PARLEY_BUILD_TOOLS")
    parser.add_argument("--tools-target", required=True, help="1 when the parley-tools target exists")
    args = parser.parse_args()

    want_tools = args.build_tools.upper() in ("ON", "1", "TRUE", "YES")
    if want_tools and args.tools_target != "1":
        sys.exit("check_debs: PARLEY_BUILD_TOOLS is ON but there is no parley-tools target; "
                 "the parley-tools package cannot be built")
    if not want_tools:
        print("PARLEY_BUILD_TOOLS is OFF: only libparley-dev is built and checked; "
              "configure with -DPARLEY_BUILD_TOOLS=ON to check parley-tools too")

    args.build_dir, args.source_dir = args.build_dir.resolve(), args.source_dir.resolve()
    work = args.work_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    out = work / "out"
    out.mkdir(parents=True)
    run(args.cpack, "-G", "DEB", "--config", args.build_dir / "CPackConfig.cmake", "-B", out, cwd=args.build_dir)

    arch = run("dpkg", "--print-architecture").strip()
    licence_text = (args.source_dir / "LICENSE").read_text(encoding="utf-8")
    version = args.version
    dev = out / f"libparley-dev_{version}_all.deb"
    tools = out / f"parley-tools_{version}_{arch}.deb"
    built = sorted(p.name for p in out.glob("*.deb"))
    expected = sorted([dev.name] + ([tools.name] if want_tools else []))
    if not check(built == expected, f"cpack made {built}, expected {expected}"):
        sys.exit(1)

    check_package(
        dev, "libparley-dev", version, "all", ["nlohmann-json3-dev", "libexpected-dev"],
        files=["/usr/include/parley/parley.hpp", "/usr/include/parley/hub.hpp",
               "/usr/include/parley/single/parley.hpp",
               "/usr/share/cmake/parley/parley-config.cmake",
               "/usr/share/cmake/parley/parley-config-version.cmake",
               "/usr/share/cmake/parley/parley-targets.cmake"],
        absent=["/usr/bin", "/etc", "/lib", "/usr/share/doc/parley-tools"])

    root = work / "root"
    root.mkdir()
    if want_tools:
        check_package(
            tools, "parley-tools", version, arch, ["libsqlite3-0", "libssl3", "libnats3.4"],
            files=["/usr/bin/parley-tools", "/lib/systemd/system/parley-server.service",
                   "/etc/default/parley", "/usr/share/man/man1/parley-tools.1.gz"],
            absent=["/usr/include", "/usr/share/cmake", "/usr/share/doc/libparley-dev"])
        check_maintainer_scripts(tools, work)
        run("dpkg-deb", "-x", tools, root)
        check_licence(root, "parley-tools", licence_text)
        check_third_party_notices(root)
        shown = run(root / "usr/bin/parley-tools", "--version")
        check(version in shown, f"parley-tools --version printed {shown.strip()!r}, without {version}")
        print(f"unpacked parley-tools --version: {shown.strip()}")
        verify_unit(root)

    # The dev package alone must be enough for a find_package user.
    run("dpkg-deb", "-x", dev, root)
    check_licence(root, "libparley-dev", licence_text)
    for error in single_header_errors((root / "usr/include/parley/single/parley.hpp").read_text(encoding="utf-8"),
                                      licence_text, version, "libparley-dev: parley/single/parley.hpp"):
        check(False, error)
    config = (root / "usr/share/cmake/parley/parley-config.cmake").read_text(encoding="utf-8")
    check(config.startswith("# SPDX-License-Identifier: MIT\n"),
          "libparley-dev: parley-config.cmake does not open with its SPDX licence line")
    consumer = [args.cmake,
                f"-DWORK_DIR={work / 'consumer'}",
                f"-DCONSUMER_DIR={args.source_dir / 'tests/cmake/find_package'}",
                f"-DPREFIX_PATH={'|'.join(filter(None, [str(root / 'usr'), args.prefix_path]))}",
                f"-DEXPECT_PACKAGE_UNDER={root / 'usr'}"]
    if args.generator:
        consumer.append(f"-DGENERATOR={args.generator}")
    if args.cxx:
        consumer.append(f"-DCXX_COMPILER={args.cxx}")
    consumer += ["-P", args.source_dir / "tests/cmake/run_consumer.cmake"]
    print(run(*consumer))

    # So must its single header, included by its installed name.
    if args.cxx:
        program = work / "single.cpp"
        program.write_text("#include <parley/single/parley.hpp>\n"
                           "int main() { return parley::version_string.empty() ? 1 : 0; }\n")
        run(args.cxx, "-std=c++17", "-fsyntax-only", f"-I{root / 'usr/include'}", program)
        print("the packaged single header compiles as <parley/single/parley.hpp>")

    if failures:
        sys.exit(f"check_debs: {len(failures)} problem(s)")
    print("packages OK")


if __name__ == "__main__":
    main()
