-- POST /mcp tools/call of calculator_evaluate: an MCP client's tool call over
-- Streamable HTTP (stateless, JSON response). Run by hand (docs/mcp.md):
--   wrk -t2 -c64 -d10s --latency -s tests/benches/wrk/mcp.lua http://127.0.0.1:8080/mcp
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.body = '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", ' ..
   '"params": {"name": "calculator_evaluate", "arguments": {"expression": "2 * (3 + 4)"}}}'
