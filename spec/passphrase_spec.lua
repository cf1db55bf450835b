-- An encrypted key with no `password`: OpenSSL's own pass-phrase prompt
-- (PEM_def_callback), as LuaSec 1.2 leaves it: it reads /dev/tty, or stdin when
-- the process has no terminal.  LuaSec's samples/key/loadkey.lua
-- (spec/fixtures/loadkey_sample.lua) runs under the real LuaSec and under
-- ljssl in a new session (setsid: no controlling terminal, so /dev/tty cannot
-- be opened) with the pass phrase on stdin, and both must behave the same.
-- `password = false` (ljssl only) refuses without prompting.  Every child is
-- bounded by `timeout`; this run's shim setting reaches ljssl's children.
local helpers = require "helpers"

local pki, here

-- Runs the sample; returns its stdout, its stderr and its exit status.
local function sample(impl, stdin, ...)
  local err = os.tmpname()
  local path = impl == "ljssl" and ("LUA_PATH='%s/ffi/?.lua;%s/ffi/?/init.lua;;' "):format(here, here) or ""
  local input = stdin and ("printf '%s' |"):format(stdin) or "</dev/null"
  local cmd = ("cd / && %s %ssetsid -w timeout 20 %s %s/spec/fixtures/loadkey_sample.lua %s")
    :format(stdin and input or "", path, helpers.luajit(), here, table.concat({ ... }, " "))
  if not stdin then cmd = cmd .. " </dev/null" end
  local _, out, status = helpers.sh(cmd .. " 2>" .. err)
  local stderr = helpers.readfile(err)
  os.remove(err)
  assert.truthy(stderr:find("implementation " .. impl, 1, true), stderr)
  return out, stderr, status
end

local function prompts(stderr)
  local n = 0
  for _ in stderr:gmatch("Enter PEM pass phrase:") do n = n + 1 end
  return n
end

-- The message of the sample's failed assert, without the script's path.
local function failure(stderr)
  return stderr:match("loadkey_sample%.lua:%d+: ([^\n]*)")
end

describe("no password: OpenSSL's pass-phrase prompt, as LuaSec", function()
  setup(function()
    pki = helpers.pki()
    here = os.getenv("PWD")
  end)

  local cases = {
    { "the right pass phrase on stdin", "secret\\n" },
    { "a wrong pass phrase on stdin", "wrong\\n" },
    { "an empty stdin", nil },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. ": ljssl does what LuaSec 1.2 does", function()
      local lout, lerr, lstatus = sample("LuaSec", case[2], pki.key_encrypted, "secret")
      local jout, jerr, jstatus = sample("ljssl", case[2], pki.key_encrypted, "secret")
      assert.equal(lout, jout)
      assert.equal(lstatus, jstatus, lerr .. "\n---\n" .. jerr)
      assert.equal(failure(lerr), failure(jerr))
      assert.equal(prompts(lerr), prompts(jerr))
      assert.is_true(prompts(jerr) >= 1, jerr)      -- OpenSSL asked
    end)
  end

  it("opens the key with the pass phrase typed in, then with a string and a function", function()
    local out, stderr, status = sample("ljssl", "secret\\n", pki.key_encrypted, "secret")
    assert.equal(0, status, stderr)
    assert.equal("*** Hint: password is 'secret' ***\nShell: ok\nText: ok\nCallback: ok\n", out)
  end)

  it("refuses a wrong pass phrase with OpenSSL's reason", function()
    local _, stderr, status = sample("ljssl", "wrong\\n", pki.key_encrypted, "secret")
    assert.equal(1, status)
    assert.equal("error loading private key (bad decrypt)", failure(stderr))
  end)

  it("never asks for an unencrypted key", function()
    local out, stderr, status = sample("ljssl", nil, pki.server_key, "secret")
    assert.equal(0, status, stderr)
    assert.equal(0, prompts(stderr))
    assert.truthy(out:find("Callback: ok", 1, true))
  end)

  it("password = false refuses without prompting, though stdin holds the pass phrase", function()
    local out, stderr, status = sample("ljssl", "secret\\n", pki.key_encrypted, "secret", "false")
    assert.equal(1, status)
    assert.equal(0, prompts(stderr), stderr)
    assert.truthy(failure(stderr):match("^error loading private key %(.+%)$"), stderr)
    assert.equal("*** Hint: password is 'secret' ***\n", out)
    -- LuaSec has no such value: loadkey raises
    local _, lerr = sample("LuaSec", "secret\\n", pki.key_encrypted, "secret", "false")
    assert.truthy(lerr:find("invalid callback value", 1, true), lerr)
  end)
end)
