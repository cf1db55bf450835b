-- ljssl inside a real nginx (Debian's nginx + lua module, under the LuaJIT that
-- nginx links): pages whose handlers use ssl.ngx over cosockets against a
-- local TLS server that requires a client certificate, and proxy its answer.
-- nginx runs with its own prefix in a temp folder, on loopback, started and
-- stopped here.
local socket = require "socket"
local http = require "socket.http"
local helpers = require "helpers"

local dir

local CONF = [[
worker_processes 1;
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s/error.log info;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s/tmp; proxy_temp_path %s/tmp; fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;
  lua_package_path "%s/ffi/?.lua;%s/ffi/?/init.lua;;";
  server {
    listen 127.0.0.1:%d;
    location /fetch {
      content_by_lua_block {
        local ssl_ngx = require "ssl.ngx"
        local params = { cafile = "%s/root.pem", alpn = "http/1.1", timeout = 5000,
                         hostname = "localhost" }    -- connect by address: no resolver needed
        if ngx.var.arg_cert ~= "no" then
          params.certificate = "%s/valid-chain.pem"
          params.key = "%s/valid.key"
        end
        local conn, err = ssl_ngx.connect("127.0.0.1", %d, params)
        if not conn then
          ngx.status = 502
          ngx.say("ljssl error: ", err)
          return
        end
        conn:send("GET / HTTP/1.0\r\n\r\n")
        local body, rerr = conn:receive("*a")
        local chain = conn:getpeerchain()
        ngx.header["X-TLS"] = conn:info("protocol") .. " " .. tostring(conn:getalpn()) ..
          " chain=" .. #chain .. " peer=" .. chain[1]:subject()[1].value ..
          " keepalive=" .. tostring(select(2, conn:setkeepalive()))
        conn:close()
        ngx.print(body or ("read error: " .. tostring(rerr)))
      }
    }
    location /openssl {
      content_by_lua_block {
        -- which OpenSSL ljssl runs on inside the worker, and how many are mapped
        local ffi = require "ffi"
        local lib = require "ljssl.lib"
        local maps, seen = {}, {}
        for line in io.lines("/proc/self/maps") do
          local path = line:match("(/%%S*libssl%%.so[%%.%%d]*)$") or line:match("(/%%S*libcrypto%%.so[%%.%%d]*)$")
          if path and not seen[path] then seen[path] = true; maps[#maps + 1] = path end
        end
        table.sort(maps)
        ngx.say(lib.version_text)
        ngx.say(tostring(lib.ssl == ffi.C and lib.crypto == ffi.C))
        ngx.say(table.concat(maps, " "))
      }
    }
    location /x509 {
      content_by_lua_block {
        -- certificates and configurations are plain CPU work: fine in a handler
        local x509 = require "ssl.x509"
        local f = io.open("%s/valid.pem")
        local cert = x509.load(f:read("*a"))
        f:close()
        local cfg = require("libtls.config").new()
        local ok = cfg:set_ca_file("%s/root.pem")
        ngx.say(cert:subject()[1].value, " ", #cert:digest("sha256"), " ", tostring(ok))
      }
    }
  }
}
]]

describe("inside nginx", function()
  setup(function() dir = helpers.certs() end)

  it("does TLS with a client certificate over cosockets, and proxies the answer", function()
    local nginx_bin = io.open("/usr/sbin/nginx") and "/usr/sbin/nginx"
    assert(nginx_bin, "nginx is not installed (make test installs it)")
    helpers.with_server(("openssl s_server -quiet -www -accept 127.0.0.1:PORT -cert %s/valid.pem " ..
      "-key %s/valid.key -cert_chain %s/inter.pem -Verify 2 -verify_return_error -CAfile %s/root.pem " ..
      "-alpn http/1.1"):format(dir, dir, dir, dir), function(tls_port)
      local prefix = helpers.tmpdir()
      assert(helpers.sh("mkdir -p " .. prefix .. "/tmp " .. prefix .. "/logs"))
      local port = helpers.free_port()
      local repo = os.getenv("PWD")
      helpers.writefile(prefix .. "/nginx.conf", CONF:format(prefix, prefix, prefix, prefix, prefix,
        prefix, prefix, repo, repo, port, dir, dir, dir, tls_port, dir, dir))
      local nginx = helpers.spawn(("%s -p %s -c %s/nginx.conf"):format(nginx_bin, prefix, prefix))
      local ok, err = pcall(function()
        helpers.wait_port(port)
        local body, code, headers = http.request(("http://127.0.0.1:%d/fetch"):format(port))
        assert.equal(200, code, tostring(body) .. helpers.readfile(prefix .. "/error.log"))
        assert.truthy(body:find("s_server", 1, true), body)
        assert.equal("TLSv1.3 http/1.1 chain=2 peer=localhost keepalive=" ..
          "keepalive is not supported for ljssl connections: close() instead", headers["x-tls"])
        -- ljssl uses the OpenSSL nginx itself runs with (whichever 3.x that
        -- is), through the process's own symbols: no second copy is loaded
        local obody, ocode = http.request(("http://127.0.0.1:%d/openssl"):format(port))
        assert.equal(200, ocode, tostring(obody))
        local version, own, maps = obody:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n$")
        local _, vout = helpers.sh(nginx_bin .. " -V 2>&1")
        local running = vout:match("running with (OpenSSL [^)]+)%)") or vout:match("built with (OpenSSL %S+ %S+ %S+ %S+)")
        assert.equal(running, version, vout)
        assert.truthy(version:match("^OpenSSL 3%.%d+%.%d+"), version)
        assert.equal("true", own)
        local _, ldd = helpers.sh("ldd " .. nginx_bin)
        local function real_paths(text, pattern)
          local list = {}
          for path in text:gmatch(pattern) do
            list[#list + 1] = (select(2, helpers.sh("readlink -f " .. path)):gsub("%s+$", ""))
          end
          table.sort(list)
          return list
        end
        local linked = real_paths(ldd, "=> (%S*/libssl%.so[%.%d]*)")
        for _, p in ipairs(real_paths(ldd, "=> (%S*/libcrypto%.so[%.%d]*)")) do linked[#linked + 1] = p end
        table.sort(linked)
        local mapped = real_paths(maps, "%S+")
        assert.equal(2, #linked, ldd)
        assert.same(linked, mapped, ldd)
        local xbody, xcode = http.request(("http://127.0.0.1:%d/x509"):format(port))
        assert.equal(200, xcode, tostring(xbody))
        assert.equal("localhost 64 true\n", xbody)
        -- without the client certificate the server refuses
        local body2, code2 = http.request(("http://127.0.0.1:%d/fetch?cert=no"):format(port))
        assert.truthy(code2 == 502 or (body2 and body2:find("read error", 1, true)), tostring(body2))
      end)
      nginx:stop()
      local log = helpers.readfile(prefix .. "/error.log")
      helpers.sh("rm -rf " .. prefix)
      assert(ok, tostring(err) .. "\n" .. log:sub(-2000))
    end)
  end)
end)
