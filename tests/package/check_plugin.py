#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the Claude Code plugin: marketplace.json parses, its plugin's skills exist with
front matter, it declares the MIT licence, and it registers `parley-tools mcp` as the MCP server `parley`."""

import json
import pathlib
import re
import sys


def fail(message):
    print(f"check_plugin: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    with open(root / ".claude-plugin" / "marketplace.json", encoding="utf-8") as f:
        marketplace = json.load(f)

    if marketplace.get("name") != "parley":
        fail("the marketplace must be named parley, so `/plugin install parley@parley` works")
    if not marketplace.get("owner", {}).get("name"):
        fail("owner.name is required")
    plugins = {p.get("name"): p for p in marketplace.get("plugins", [])}
    plugin = plugins.get("parley") or fail("no plugin named parley")

    if plugin.get("license") != "MIT":
        fail(f"the plugin's license is {plugin.get('license')!r}, not 'MIT'")

    source = (root / plugin["source"]).resolve()
    if source != root:
        fail(f"source {plugin['source']!r} should be the repository root")
    if not plugin.get("skills"):
        fail("the plugin names no skills")
    for skill in plugin["skills"]:
        skill_md = source / skill / "SKILL.md"
        if not skill_md.is_file():
            fail(f"{skill} has no SKILL.md")
        text = skill_md.read_text(encoding="utf-8")
        front = re.match(r"^---\n(.*?)\n---\n", text, re.S) or fail(f"{skill_md}: no YAML front matter")
        fields = dict(re.findall(r"^(\w+):\s*(.+)$", front.group(1), re.M))
        for field in ("name", "description"):
            if not fields.get(field):
                fail(f"{skill_md}: front matter lacks {field}")
        for tool in ("join_room", "send_message", "read_messages"):
            if tool not in text:
                fail(f"{skill_md}: never mentions {tool}")

    server = plugin.get("mcpServers", {}).get("parley") or fail("no mcpServers.parley")
    if server.get("command") != "parley-tools" or server.get("args") != ["mcp"]:
        fail(f"mcpServers.parley should run `parley-tools mcp`, not {server}")

    print(f"plugin parley: skills {plugin['skills']}, MCP server `parley-tools mcp`")


if __name__ == "__main__":
    main()
