-- POST /v1/tools/calculator_evaluate/invoke: a direct tool call, no LLM.
-- report.lua, next to this file, prints the line the benchmark parses.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"expression": "2 * (3 + 4)"}'
