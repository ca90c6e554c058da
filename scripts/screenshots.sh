#!/usr/bin/env bash
# Renders docs/img/*.png: real terminal output captured from tmux (colours included), converted to HTML by
# aha and photographed by headless Chromium. Needs the Debian packages tmux, aha, chromium and neovim.
#   bash scripts/screenshots.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/docs/img"
WORK=$(mktemp -d)
trap 'tmux kill-session -t mlspec-shot 2>/dev/null || true; rm -rf "$WORK"' EXIT
export PATH="$ROOT/.venv/bin:$PATH"

shoot() {  # shoot NAME WIDTH HEIGHT: the tmux pane as it is now -> docs/img/NAME.png
  tmux capture-pane -e -p -t mlspec-shot | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$WORK/$1.ansi"
  { echo '<style>body{margin:8px;background:#1e1e1e}pre{font:15px/1.25 "DejaVu Sans Mono",monospace;color:#ddd}</style>'
    aha --black --no-header < "$WORK/$1.ansi" | sed 's/^/ /' | { echo '<pre>'; cat; echo '</pre>'; }
  } > "$WORK/$1.html"
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$2,$3" \
    --screenshot="$OUT/$1.png" "file://$WORK/$1.html" >/dev/null 2>&1
}

cd "$WORK"
mlspec init --example churn >/dev/null
mkdir specs && mlspec init --example house-prices --out specs/prices.yaml >/dev/null
sed -i 's/replicas: {min: 1, max: 3}/replcas: {min: 1, max: 3}/' mlops.yaml
sed -i 's/prices-runtime:0.1.0/prices-runtime:latest/; s/metric: r2, min: 0.5/metric: r2_score, min: 0.5/' specs/prices.yaml
tmux new-session -d -s mlspec-shot -x 100 -y 30 -c "$WORK" "env PS1='$ ' TERM=xterm-256color bash --norc -i"
tmux send-keys -t mlspec-shot "clear; mlspec lint" Enter
sleep 5
shoot cli-lint 960 600

rm -rf specs
sed -i 's/replcas:/replicas:/' mlops.yaml
tmux resize-window -t mlspec-shot -x 118 -y 34
tmux send-keys -t mlspec-shot "clear; mlspec run mlops.yaml" Enter
for _ in $(seq 1 240); do  # the progress line while the model trains
  tmux capture-pane -p -t mlspec-shot | grep -q "epochs" && break
  sleep 0.5
done
shoot cli-run-progress 1120 300
for _ in $(seq 1 240); do
  tmux capture-pane -p -t mlspec-shot | grep -q "mlspec compile mlops.yaml" && break
  sleep 1
done
shoot cli-run 1120 640

# Neovim's built-in LSP client on a spec with two problems: diagnostics as signs and virtual text
sed -i 's/churn-runtime:0.1.0/churn-runtime:latest/; s/metric: auc, min: 0.65/metric: f2, min: 0.65/' mlops.yaml
cat > "$WORK/init.lua" <<'LUA'
vim.o.number = true
vim.o.signcolumn = "yes"
vim.cmd("syntax on")
vim.api.nvim_create_autocmd("BufReadPost", {
  pattern = "*.yaml",
  callback = function(args)
    local client = vim.lsp.start_client({ name = "mlspec", cmd = { "mlspec", "lsp" }, root_dir = vim.fn.getcwd() })
    vim.lsp.buf_attach_client(args.buf, client)
  end,
})
LUA
tmux resize-window -t mlspec-shot -x 100 -y 30
tmux send-keys -t mlspec-shot "clear; nvim -u init.lua +8 mlops.yaml" Enter
sleep 10
tmux send-keys -t mlspec-shot "zt"
sleep 1
shoot editor-neovim 960 600
tmux send-keys -t mlspec-shot Escape ":qa!" Enter
