-- Driven by editor-lsp/tests/neovim.rs: opens the example through onetrip.lua (the README's
-- configuration), edits it, asks for completion and a definition, and writes what it saw as
-- JSON to $ONETRIP_NVIM_OUT, then quits. Every wait is bounded; a failure is written too.
local out_path = assert(os.getenv("ONETRIP_NVIM_OUT"), "ONETRIP_NVIM_OUT is not set")
local server = assert(os.getenv("ONETRIP_LSP"), "ONETRIP_LSP is not set")
local root = assert(os.getenv("ONETRIP_ROOT"), "ONETRIP_ROOT is not set")
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
local TIMEOUT = 8000 -- ms per wait; the Rust side gives the whole run 60 s

-- Neovim 0.10 renamed the client lists.
local function clients(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr })
  end
  return bufnr and vim.lsp.buf_get_clients(bufnr) or vim.lsp.get_active_clients()
end

local findings = { nvim = tostring(vim.version().major) .. "." .. vim.version().minor .. "." .. vim.version().patch }
local published = {} -- every publishDiagnostics the client received, in order

-- Record the raw notifications, then let Neovim handle them as usual (virtual text, signs).
local default_publish = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
  local codes = {}
  for _, d in ipairs(result.diagnostics or {}) do
    table.insert(codes, d.code or "")
  end
  table.insert(published, { uri = result.uri, codes = codes })
  return default_publish(err, result, ctx, config)
end

local function codes_of(buf)
  local codes = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    table.insert(codes, tostring(d.code))
  end
  return codes
end

local function has(list, wanted)
  for _, x in ipairs(list) do
    if x == wanted then
      return true
    end
  end
  return false
end

-- The first line matching a Lua pattern, 0-based, and the byte column where `word` starts.
local function find(buf, pattern, word)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    if line:match(pattern) then
      local col = line:find(word, 1, true)
      return i - 1, col - 1
    end
  end
  error("no line matches " .. pattern)
end

local function request(buf, method, params)
  local answers, err = vim.lsp.buf_request_sync(buf, method, params, TIMEOUT)
  if not answers then
    error(method .. ": " .. tostring(err))
  end
  for _, answer in pairs(answers) do
    if answer.err then
      error(method .. ": " .. vim.inspect(answer.err))
    end
    return answer.result
  end
  error(method .. ": no answer")
end

local function main()
  dofile(here .. "/onetrip.lua").setup({ cmd = { server } })
  local file = root .. "/start_business.flow"
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(buf)
  findings.filetype = vim.bo[buf].filetype

  findings.attached = vim.wait(TIMEOUT, function()
    return next(clients(buf)) ~= nil
  end, 20)
  local function published_for_file()
    for _, p in ipairs(published) do
      if p.uri == uri then
        return p
      end
    end
  end
  findings.first_diagnostics_received = vim.wait(TIMEOUT, function()
    return published_for_file() ~= nil
  end, 20)
  findings.first_diagnostics = (published_for_file() or {}).codes or {}

  -- `window   samr` -> `window   nosuch_department`, through the buffer: Neovim sends an
  -- incremental didChange.
  local row, col = find(buf, "^%s*window%s+samr", "samr")
  findings.edit_line = row
  vim.api.nvim_buf_set_text(buf, row, col, row, col + #"samr", { "nosuch_department" })
  findings.e0101_received = vim.wait(TIMEOUT, function()
    return has(codes_of(buf), "E0101")
  end, 20)
  findings.after_edit = codes_of(buf)
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if tostring(d.code) == "E0101" then
      findings.e0101 = { line = d.lnum, col = d.col, message = d.message }
    end
  end

  -- Completion at the start of the (now unknown) name in the `window` field, where a
  -- department name goes.
  local result = request(buf, "textDocument/completion", {
    textDocument = { uri = uri },
    position = { line = row, character = col },
  })
  local items = result and (result.items or result) or {}
  findings.completion = {}
  for _, item in ipairs(items) do
    table.insert(findings.completion, item.label)
  end

  -- Go to definition of an item of the flow declared in samr.flow.
  local drow, dcol = find(buf, "^%s*company_registration%s*$", "company_registration")
  local definition = request(buf, "textDocument/definition", {
    textDocument = { uri = uri },
    position = { line = drow, character = dcol + 3 },
  })
  if definition and definition.uri then
    definition = { definition }
  end
  findings.definition = {}
  for _, location in ipairs(definition or {}) do
    table.insert(findings.definition, {
      uri = location.uri or location.targetUri,
      line = (location.range or location.targetSelectionRange).start.line,
    })
  end

  -- Undo the edit: the error goes away.
  vim.api.nvim_buf_set_text(buf, row, col, row, col + #"nosuch_department", { "samr" })
  findings.e0101_cleared = vim.wait(TIMEOUT, function()
    return not has(codes_of(buf), "E0101")
  end, 20)
  findings.after_undo = codes_of(buf)
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  findings.error = tostring(err)
end
local f = assert(io.open(out_path, "w"))
f:write(vim.fn.json_encode(findings))
f:close()
-- Stop the server politely (shutdown + exit) before quitting.
vim.lsp.stop_client(clients())
vim.wait(2000, function()
  return next(clients()) == nil
end, 20)
vim.cmd("qa!")
