-- onetrip-lsp for Neovim: `*.flow` files get the `flow` filetype, and a `flow` buffer starts
-- (or reuses) a client whose root is the file's folder. Works on Neovim 0.7 and later:
-- `vim.lsp.start` (0.8+) when there is one, else `vim.lsp.start_client` + `buf_attach_client`.
--
-- Save as ~/.config/nvim/lua/onetrip.lua and call `require("onetrip").setup()` from init.lua;
-- `setup({ cmd = { "/path/to/onetrip-lsp" } })` if the server is not on PATH.
-- editor-lsp/tests/neovim.rs runs exactly this file.
local M = {}

function M.setup(opts)
  opts = opts or {}
  local cmd = opts.cmd or { "onetrip-lsp" }
  local clients = {} -- root folder -> client id (Neovim 0.7 only)
  local group = vim.api.nvim_create_augroup("onetrip", { clear = true })
  vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
    group = group,
    pattern = "*.flow",
    command = "setfiletype flow",
  })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = "flow",
    callback = function(args)
      local root = opts.root_dir or vim.fn.fnamemodify(vim.api.nvim_buf_get_name(args.buf), ":p:h")
      local config = { name = "onetrip", cmd = cmd, root_dir = root }
      if vim.lsp.start then
        vim.lsp.start(config, { bufnr = args.buf })
      else
        clients[root] = clients[root] or vim.lsp.start_client(config)
        vim.lsp.buf_attach_client(args.buf, clients[root])
      end
    end,
  })
end

return M
