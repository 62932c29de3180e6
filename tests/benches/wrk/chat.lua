-- POST /v1/chat/completions, not streamed: the mock LLM answers with one
-- calculator call, then the answer, so each request is one agent turn with
-- two model calls and one tool call.
-- report.lua, next to this file, prints the line the benchmark parses.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "mock-model", "messages": [{"role": "user", "content": "2 * (3 + 4)"}]}'
