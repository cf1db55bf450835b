-- tools/cdefs_unnamed.lua — shared by tools/gen_cdefs and tools/check_cdefs:
-- a prototype without its parameter names, so that two header sets that
-- name parameters differently compare equal ("const char *host" and
-- "const char *hostname" both become "const char *").  Prototypes with a
-- function-pointer parameter are returned unchanged.
return function(line)
  local head, params, tail = line:match("^(.-%()(.*)(%);)$")
  if not head or params:find("(", 1, true) then return line end
  local out = {}
  for p in (params .. ","):gmatch("([^,]*),") do
    p = p:gsub("^%s+", ""):gsub("%s+$", "")
    local stripped = p:gsub("([%*%s])[%a_][%w_]*$", "%1"):gsub("%s+$", "")
    if stripped:match("[%a_]") then p = stripped end
    out[#out + 1] = p
  end
  return head .. table.concat(out, ", ") .. tail
end
