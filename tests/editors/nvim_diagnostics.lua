-- Headless Neovim with its built-in LSP client: start `mlspec lsp` for the current buffer, wait for the
-- server's first diagnostics and write them as JSON to $MLSPEC_NVIM_OUT, then quit.
--   MLSPEC_LSP_CMD='["mlspec","lsp"]' MLSPEC_NVIM_OUT=out.json nvim --headless -u NONE SPEC -c 'luafile THIS'
local out = assert(os.getenv("MLSPEC_NVIM_OUT"), "MLSPEC_NVIM_OUT is not set")
local cmd = vim.fn.json_decode((assert(os.getenv("MLSPEC_LSP_CMD"), "MLSPEC_LSP_CMD is not set")))
local buf = vim.api.nvim_get_current_buf()
local published = false

local client = vim.lsp.start_client({
  name = "mlspec",
  cmd = cmd,
  root_dir = vim.fn.getcwd(),
  handlers = {
    ["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
      vim.lsp.diagnostic.on_publish_diagnostics(err, result, ctx, config)
      published = true
    end,
  },
})
vim.lsp.buf_attach_client(buf, client)

local rows = {}
if vim.wait(30000, function() return published end, 50) then
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    local lsp = (d.user_data or {}).lsp or {}
    table.insert(rows, {
      code = d.code or lsp.code,
      lnum = d.lnum,
      col = d.col,
      end_lnum = d.end_lnum,
      end_col = d.end_col,
      severity = d.severity,
      message = d.message,
    })
  end
else
  rows = { error = "no diagnostics were published within 30 s" }
end
local file = assert(io.open(out, "w"))
file:write(vim.fn.json_encode(rows))
file:close()
vim.lsp.stop_client(client)
vim.cmd("qa!")
