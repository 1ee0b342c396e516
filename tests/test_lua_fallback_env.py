"""What the clients' Lua fallback (clients/lua/ratelimit.lua) relies on exists on the server
under test (issue 22, item 3): every Lua function it calls, in the server's Lua 5.1, and
every Redis command it sends. Run on each server of the matrix, this is the check that broke
traefik on Dragonfly (#13824: `math.maxn`, which Dragonfly's Lua lacks).

The lists in clients/README.md ("What the script relies on") must name exactly what the
script uses: the test reads both.
"""

import re

import pytest

from server import ROOT

SCRIPT = (ROOT / "clients" / "lua" / "ratelimit.lua").read_text()
README = (ROOT / "clients" / "README.md").read_text()
KEYWORDS = {"and", "elseif", "end", "for", "function", "if", "in", "local", "not", "or", "repeat",
            "return", "then", "until", "while"}


def code(text):
    """The script without comments and string literals (Lua: -- to end of line; '...')."""
    text = re.sub(r"--\[\[.*?\]\]", "", text, flags=re.S)
    text = re.sub(r"--[^\n]*", "", text)
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", text)


def lua_functions():
    """Library functions (`math.floor`) and global functions (`tonumber`) the script calls,
    less the ones it defines itself."""
    body = code(SCRIPT)
    own = set(re.findall(r"\blocal\s+function\s+(\w+)", body))
    own |= set(re.findall(r"\blocal\s+(\w+)\s*=\s*function\b", body))
    library = set(re.findall(r"(?<![\w.:])([a-z_]\w*\.[a-z_]\w*)\s*\(", body))
    plain = set(re.findall(r"(?<![\w.:])([a-z_]\w*)\s*\(", body)) - own - KEYWORDS
    return library | plain


def redis_commands():
    """The commands the script sends: the first argument of every redis.call/pcall."""
    return {m.upper() for m in re.findall(r"redis\.p?call\(\s*'(\w+)'", SCRIPT)}


def readme_list(title):
    """The backquoted names in the README's bullet `- **title**: ...`."""
    m = re.search(rf"^- \*\*{re.escape(title)}\*\*:(.*)$", README, flags=re.M)
    assert m, f"clients/README.md has no '- **{title}**:' line"
    return set(re.findall(r"`([^`]+)`", m.group(1)))


def test_the_readme_lists_exactly_what_the_script_uses():
    assert readme_list("Lua functions") == lua_functions()
    assert readme_list("Redis commands") == redis_commands()


@pytest.mark.parametrize("name", sorted(lua_functions()))
def test_each_lua_function_exists_in_the_servers_lua(r, name):
    assert r.eval(f"return type({name})", 0) == b"function", name


@pytest.mark.parametrize("command", sorted(redis_commands()))
def test_each_redis_command_exists_on_the_server(r, command):
    info = r.execute_command("COMMAND", "INFO", command)
    assert info and info.get(command.lower()) is not None, command


def test_the_script_runs_on_plain_lua_5_1(r):
    """The server's Lua is 5.1 (what the script is written for): `_VERSION`."""
    assert r.eval("return _VERSION", 0) == b"Lua 5.1"
