-- End to end with nothing but the generated declarations and ljssl.lib: a TLS 1.3
-- handshake and an exchange between a client and a server SSL over a BIO pair.
local ffi = require "ffi"
local helpers = require "helpers"
local lib = require "ljssl.lib"
local C, crypto, K = lib.ssl, lib.crypto, lib.K

local function context(method, pki, server)
  local ctx = C.SSL_CTX_new(method)
  assert(ctx ~= nil)
  ffi.gc(ctx, C.SSL_CTX_free)
  assert.equal(1, tonumber(lib.SSL_CTX_set_min_proto_version(ctx, K.TLS1_3_VERSION)))
  if server then
    assert.equal(1, C.SSL_CTX_use_certificate_chain_file(ctx, pki.server))
    assert.equal(1, C.SSL_CTX_use_PrivateKey_file(ctx, pki.server_key, K.SSL_FILETYPE_PEM))
    assert.equal(1, C.SSL_CTX_check_private_key(ctx))
  else
    assert.equal(1, C.SSL_CTX_load_verify_locations(ctx, pki.ca, nil))
    C.SSL_CTX_set_verify(ctx, K.SSL_VERIFY_PEER, nil)
  end
  return ctx
end

-- Both ends of one BIO pair, each owned by its SSL.
local function connect_pair(client_ctx, server_ctx)
  local client = ffi.gc(C.SSL_new(client_ctx), C.SSL_free)
  local server = ffi.gc(C.SSL_new(server_ctx), C.SSL_free)
  local b1, b2 = ffi.new("BIO *[1]"), ffi.new("BIO *[1]")
  assert.equal(1, crypto.BIO_new_bio_pair(b1, 0, b2, 0))
  C.SSL_set_bio(client, b1[0], b1[0])
  C.SSL_set_bio(server, b2[0], b2[0])
  C.SSL_set_connect_state(client)
  C.SSL_set_accept_state(server)
  return client, server
end

-- Steps both handshakes until both finish; a bounded loop.
local function handshake(client, server)
  local done_c, done_s = false, false
  for _ = 1, 50 do
    if not done_c then
      lib.clear_errors()
      local rc = C.SSL_do_handshake(client)
      if rc == 1 then done_c = true
      else
        local e = C.SSL_get_error(client, rc)
        if e ~= K.SSL_ERROR_WANT_READ then return false, "client", select(2, lib.pop_error()) end
      end
    end
    if not done_s then
      lib.clear_errors()
      local rc = C.SSL_do_handshake(server)
      if rc == 1 then done_s = true
      else
        local e = C.SSL_get_error(server, rc)
        if e ~= K.SSL_ERROR_WANT_READ then return false, "server", select(2, lib.pop_error()) end
      end
    end
    if done_c and done_s then return true end
  end
  return false, "loop", "handshake did not finish"
end

describe("memory BIO pair, library layer only", function()
  local pki
  setup(function() pki = helpers.pki() end)

  it("completes a verified TLS 1.3 handshake and exchanges bytes", function()
    local client, server = connect_pair(context(C.TLS_client_method(), pki),
                                        context(C.TLS_server_method(), pki, true))
    assert.equal(1, tonumber(lib.SSL_set_tlsext_host_name(client, "localhost")))
    assert.equal(1, C.SSL_set1_host(client, "localhost"))
    assert.is_true(handshake(client, server))

    assert.equal("TLSv1.3", ffi.string(C.SSL_get_version(client)))
    assert.equal("TLSv1.3", ffi.string(C.SSL_get_version(server)))
    local cipher = ffi.string(C.SSL_CIPHER_get_name(C.SSL_get_current_cipher(client)))
    assert.truthy(cipher:match("^TLS_"), cipher)
    assert.equal(cipher, ffi.string(C.SSL_CIPHER_get_name(C.SSL_get_current_cipher(server))))
    assert.equal(K.X509_V_OK, tonumber(C.SSL_get_verify_result(client)))
    assert.equal("localhost", ffi.string(C.SSL_get_servername(server, K.TLSEXT_NAMETYPE_host_name)))

    local peer = C.SSL_get1_peer_certificate(client)
    assert.is_true(peer ~= nil)
    ffi.gc(peer, crypto.X509_free)
    local name = crypto.X509_NAME_oneline(crypto.X509_get_subject_name(peer), nil, 0)
    assert.equal("/O=ljssl/CN=localhost", ffi.string(name))
    lib.OPENSSL_free(name)
    assert.equal(1, lib.sk_X509_num(C.SSL_get_peer_cert_chain(client)))

    local message = "hello over a BIO pair\n" .. ("x"):rep(40000)
    local sent = 0
    local buf = ffi.new("char[16384]")
    local received = {}
    for _ = 1, 100 do
      if sent < #message then
        local n = C.SSL_write(client, ffi.cast("const char *", message) + sent, #message - sent)
        if n > 0 then sent = sent + n end
      end
      local n = C.SSL_read(server, buf, 16384)
      if n > 0 then received[#received + 1] = ffi.string(buf, n) end
      if #table.concat(received) == #message then break end
    end
    assert.equal(message, table.concat(received))
  end)

  it("fails the handshake when the client does not trust the server's CA", function()
    local wrong = context(C.TLS_client_method(), { ca = pki.other_ca })
    local client, server = connect_pair(wrong, context(C.TLS_server_method(), pki, true))
    local ok, side, reason = handshake(client, server)
    assert.is_false(ok)
    assert.equal("client", side)
    assert.equal("certificate verify failed", reason)
    assert.equal(K.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, tonumber(C.SSL_get_verify_result(client)))
  end)

  it("fails the host-name check for a name the certificate does not carry", function()
    local client, server = connect_pair(context(C.TLS_client_method(), pki),
                                        context(C.TLS_server_method(), pki, true))
    assert.equal(1, C.SSL_set1_host(client, "wrong.example.org"))
    local ok, _, reason = handshake(client, server)
    assert.is_false(ok)
    assert.equal("certificate verify failed", reason)
    assert.equal(K.X509_V_ERR_HOSTNAME_MISMATCH, tonumber(C.SSL_get_verify_result(client)))
  end)
end)
