-- bench/plot.lua — draws bench/results.md's ratios as a PNG bar chart, in pure
-- Lua (no plotting package on the machine): for each benchmark, how ljssl
-- compares with C/OpenSSL and with LuaSec, turned so that above 1.0 always
-- means ljssl is better (for "smaller is better" rows the ratio is inverted).
--
--   local plot = require "plot"   (from bench/)
--   plot.write(path, { { label = "bulk", vs_c = 0.98, vs_luasec = 1.1 }, ... })

local bit = require "bit"
local band, bor, bxor, rshift, lshift = bit.band, bit.bor, bit.bxor, bit.rshift, bit.lshift
local char, byte = string.char, string.byte

local plot = {}

-- PNG encoding ---------------------------------------------------------------------

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    c = band(c, 1) ~= 0 and bxor(0xEDB88320, rshift(c, 1)) or rshift(c, 1)
  end
  crc_table[i] = c
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = bxor(crc_table[band(bxor(c, byte(s, i)), 0xFF)], rshift(c, 8)) end
  return bxor(c, 0xFFFFFFFF)
end

local function u32(n)
  return char(band(rshift(n, 24), 0xFF), band(rshift(n, 16), 0xFF), band(rshift(n, 8), 0xFF), band(n, 0xFF))
end

local function chunk(kind, data)
  return u32(#data) .. kind .. data .. u32(crc32(kind .. data))
end

-- zlib stream of stored (uncompressed) deflate blocks: valid, if not small.
local function zlib_stored(data)
  local parts, a, b = { "\120\1" }, 1, 0
  for i = 1, #data, 65535 do
    local block = data:sub(i, i + 65534)
    local final = i + 65535 > #data and 1 or 0
    parts[#parts + 1] = char(final, band(#block, 0xFF), rshift(#block, 8),
      band(bxor(#block, 0xFFFF), 0xFF), rshift(bxor(#block, 0xFFFF), 8)) .. block
  end
  for i = 1, #data do
    a = (a + byte(data, i)) % 65521
    b = (b + a) % 65521
  end
  parts[#parts + 1] = u32(bor(lshift(b, 16), a))
  return table.concat(parts)
end

-- The system zlib (Debian always has it: dpkg needs it) compresses; without
-- it the stored form is used.
local function zlib(data)
  local ffi = require "ffi"
  local ok, z = pcall(ffi.load, "libz.so.1")
  if not ok then return zlib_stored(data) end
  pcall(ffi.cdef, "int compress2(uint8_t *dest, unsigned long *destLen, const uint8_t *source, unsigned long sourceLen, int level);")
  local cap = #data + math.ceil(#data / 1000) + 64
  local out, len = ffi.new("uint8_t[?]", cap), ffi.new("unsigned long[1]", cap)
  if z.compress2(out, len, data, #data, 9) ~= 0 then return zlib_stored(data) end
  return ffi.string(out, len[0])
end

-- A canvas of w × h RGB pixels.
local function canvas(w, h)
  local px = {}
  for i = 1, w * h do px[i] = 0xFFFFFF end
  local c = { w = w, h = h }
  function c.rect(x, y, rw, rh, rgb)
    for yy = math.max(y, 0), math.min(y + rh, h) - 1 do
      for xx = math.max(x, 0), math.min(x + rw, w) - 1 do px[yy * w + xx + 1] = rgb end
    end
  end
  function c.png()
    local rows = {}
    for y = 0, h - 1 do
      local row = { "\0" }
      for x = 0, w - 1 do
        local p = px[y * w + x + 1]
        row[#row + 1] = char(rshift(p, 16), band(rshift(p, 8), 0xFF), band(p, 0xFF))
      end
      rows[#rows + 1] = table.concat(row)
    end
    return "\137PNG\r\n\26\n" ..
      chunk("IHDR", u32(w) .. u32(h) .. "\8\2\0\0\0") ..
      chunk("IDAT", zlib(table.concat(rows))) ..
      chunk("IEND", "")
  end
  return c
end

-- A 5 × 7 bitmap font, enough for the labels (upper case only) -----------------------

local FONT = {
  A = "01110100011000111111100011000110001", B = "11110100011000111110100011000111110",
  C = "01110100011000010000100001000101110", D = "11110100011000110001100011000111110",
  E = "11111100001000011110100001000011111", F = "11111100001000011110100001000010000",
  G = "01110100011000010111100011000101111", H = "10001100011000111111100011000110001",
  I = "01110001000010000100001000010001110", J = "00111000100001000010000101001001100",
  K = "10001100101010011000101001001010001", L = "10000100001000010000100001000011111",
  M = "10001110111010110101100011000110001", N = "10001110011010110011100011000110001",
  O = "01110100011000110001100011000101110", P = "11110100011000111110100001000010000",
  Q = "01110100011000110001101011001001101", R = "11110100011000111110101001001010001",
  S = "01111100001000001110000010000111110", T = "11111001000010000100001000010000100",
  U = "10001100011000110001100011000101110", V = "10001100011000110001100010101000100",
  W = "10001100011000110101101011010101010", X = "10001100010101000100010101000110001",
  Y = "10001100010101000100001000010000100", Z = "11111000010001000100010001000011111",
  ["0"] = "01110100011001110101110011000101110", ["1"] = "00100011000010000100001000010001110",
  ["2"] = "01110100010000100010001000100011111", ["3"] = "11111000100010000010000011000101110",
  ["4"] = "00010001100101010010111110001000010", ["5"] = "11111100001111000001000011000101110",
  ["6"] = "00110010001000011110100011000101110", ["7"] = "11111000010001000100010000100001000",
  ["8"] = "01110100011000101110100011000101110", ["9"] = "01110100011000101111000010001001100",
  ["."] = "00000000000000000000000000110001100", ["/"] = "00000000010001000100010001000000000",
  ["-"] = "00000000000000011111000000000000000", [":"] = "00000011000110000000011000110000000",
  ["("] = "00010001000100001000010000010000010", [")"] = "01000001000001000010000100010001000",
  ["*"] = "00000001001010101110101010010000000", ["\""] = "01010010100000000000000000000000000",
  [","] = "00000000000000000000001100010001000", ["<"] = "00010001000100010000010000010000010",
  [">"] = "01000001000001000001000100010001000", ["="] = "00000000001111100000111110000000000",
  ["+"] = "00000001000010011111001000010000000", ["%"] = "11000110010001000100010001001100011",
}

local function text(c, x, y, s, rgb, scale)
  scale = scale or 1
  s = s:upper()
  for i = 1, #s do
    local glyph = FONT[s:sub(i, i)]
    if glyph then
      for gy = 0, 6 do
        for gx = 0, 4 do
          if glyph:sub(gy * 5 + gx + 1, gy * 5 + gx + 1) == "1" then
            c.rect(x + gx * scale, y + gy * scale, scale, scale, rgb)
          end
        end
      end
    end
    x = x + 6 * scale
  end
end

-- The chart ------------------------------------------------------------------------------

local VS_C, VS_LUASEC, GRID, INK = 0x3366CC, 0xEE8833, 0xBBBBBB, 0x222222

-- rows: { label = string, vs_c = number|nil, vs_luasec = number|nil }, each
-- already turned so that > 1 means ljssl is better.
function plot.write(path, rows, title)
  local left, right, top, row_h = 330, 60, 60, 34
  local w = 1000
  local h = top + #rows * row_h + 40
  local c = canvas(w, h)
  local max = 2.0
  local function x_of(v) return left + math.floor(math.min(v, max) / max * (w - left - right)) end
  text(c, 10, 10, title or "LJSSL RELATIVE TO C/OPENSSL AND LUASEC (ABOVE 1.0: LJSSL BETTER)", INK, 2)
  c.rect(10, 38, 12, 8, VS_C); text(c, 26, 39, "VS C/OPENSSL", INK)
  c.rect(130, 38, 12, 8, VS_LUASEC); text(c, 146, 39, "VS LUASEC", INK)
  for _, v in ipairs({ 0.5, 1.0, 1.5, 2.0 }) do
    c.rect(x_of(v), top - 4, 1, #rows * row_h + 4, v == 1.0 and INK or GRID)
    text(c, x_of(v) - 9, h - 30, ("%.1f"):format(v), INK)
  end
  for i, row in ipairs(rows) do
    local y = top + (i - 1) * row_h
    text(c, 10, y + 10, row.label:sub(1, 52), INK)
    for j, key in ipairs({ "vs_c", "vs_luasec" }) do
      local v = row[key]
      if v then
        local by = y + 4 + (j - 1) * 13
        c.rect(left, by, x_of(v) - left, 11, j == 1 and VS_C or VS_LUASEC)
        text(c, x_of(v) + 4, by + 2, ("%.2f"):format(v) .. (v > max and "+" or ""), INK)
      end
    end
  end
  local f = assert(io.open(path, "wb"))
  f:write(c.png())
  f:close()
end

return plot
