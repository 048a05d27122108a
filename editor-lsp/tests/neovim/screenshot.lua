-- For docs/editor/neovim.png (see screenshot.sh): Neovim with onetrip.lua on a copy of the
-- example, the window's department renamed to an unknown one, and the diagnostic shown.
local server = assert(os.getenv("ONETRIP_LSP"), "ONETRIP_LSP is not set")
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
vim.o.termguicolors = true
vim.o.number = true
vim.o.signcolumn = "yes"
vim.o.laststatus = 2
vim.o.showmode = false
vim.o.wrap = false
-- Neovim 0.7's default colours put floats on magenta: quieter ones for the picture.
vim.cmd([[
  highlight NormalFloat guibg=#2b2b2b guifg=#d4d4d4
  highlight FloatBorder guibg=#2b2b2b guifg=#808080
  highlight SignColumn guibg=NONE
  highlight LineNr guifg=#707070
  highlight StatusLine gui=NONE guibg=#3a3a3a guifg=#d4d4d4
]])
dofile(here .. "/onetrip.lua").setup({ cmd = { server } })
vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("ONETRIP_FILE")))
local buf = vim.api.nvim_get_current_buf()
vim.wait(10000, function()
  return next(vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = buf }) or vim.lsp.buf_get_clients(buf)) ~= nil
end, 20)
for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
  local col = line:find("samr", 1, true)
  if line:match("^%s*window%s+samr") then
    vim.api.nvim_buf_set_text(buf, i - 1, col - 1, i - 1, col - 1 + #"samr", { "smar" })
    vim.api.nvim_win_set_cursor(0, { i, col - 1 })
    vim.cmd("normal! zz")
    break
  end
end
vim.wait(10000, function()
  return #vim.diagnostic.get(buf) > 0
end, 20)
vim.diagnostic.open_float({ scope = "cursor", border = "rounded" })
