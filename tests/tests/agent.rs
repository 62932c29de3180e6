//! The agent loop against the mock LLM over real HTTP, with real plugins:
//! tool calls (single, parallel, chained), errors the model can correct,
//! limits, provider failures and retries, streaming, cancellation.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use launch::agent::{Agent, AgentConfig, Event, FinishReason, TurnError};
use launch::llm::{LlmClient, LlmError, Message, ProviderConfig};
use launch_tests::PluginDir;
use launch_tests::mock_llm::{MockLlm, Reply, ToolCall, provider_config};
use serde_json::{Value, json};

fn config() -> AgentConfig {
    AgentConfig {
        system_prompt: "You are a test.".into(),
        max_iterations: 10,
        turn_timeout: Duration::from_secs(30),
        max_parallel_tools: 4,
        summarize_on_limit: true,
    }
}

fn plugins() -> PluginDir {
    PluginDir::new()
        .plugin("calculator")
        .plugin("clock")
        .fixture("trap")
        .fixture("spin")
        .manifest("spin", "[limits]\ntimeout_ms = 200\n")
        .fixture("slow")
        .manifest("slow", "[limits]\nmax_concurrency = 1\n")
}

struct Setup {
    mock: MockLlm,
    agent: Arc<Agent>,
    _dir: PluginDir,
}

async fn setup_with(tweak: impl FnOnce(&mut ProviderConfig, &mut AgentConfig)) -> Setup {
    let mock = MockLlm::start().await;
    let dir = plugins();
    let registry = Arc::new(dir.load());
    assert!(
        registry.report().failed.is_empty(),
        "{:#?}",
        registry.report().failed
    );
    let (mut p, mut c) = (provider_config(&mock), config());
    tweak(&mut p, &mut c);
    let agent = Arc::new(Agent::new(registry, LlmClient::new(p).unwrap(), c));
    Setup {
        mock,
        agent,
        _dir: dir,
    }
}

async fn setup() -> Setup {
    setup_with(|_, _| {}).await
}

fn user(text: &str) -> Vec<Message> {
    vec![Message::user(text)]
}

/// The tool messages of a recorded request, as (tool_call_id, content).
fn tool_messages(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn single_tool_call_then_answer() {
    let s = setup().await;
    s.mock.push(Reply::tool(
        "calculator_evaluate",
        json!({"expression": "6 * 7"}),
    ));
    s.mock.push(Reply::text("The answer is 42."));
    let out = s
        .agent
        .run(&user("What is 6 times 7?"), None)
        .await
        .unwrap();
    assert_eq!(out.content, "The answer is 42.");
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert_eq!(out.iterations, 2);
    assert_eq!(out.steps.len(), 1);
    assert_eq!(out.steps[0].result, Some(json!(42.0)));

    let requests = s.mock.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0].body;
    assert_eq!(first["model"], "mock-model");
    assert_eq!(
        first["messages"][0],
        json!({"role": "system", "content": "You are a test."})
    );
    assert_eq!(
        first["messages"][1],
        json!({"role": "user", "content": "What is 6 times 7?"})
    );
    let tools = first["tools"].as_array().unwrap();
    let calc = tools
        .iter()
        .find(|t| t["function"]["name"] == "calculator_evaluate")
        .unwrap();
    assert_eq!(calc["type"], "function");
    assert_eq!(
        calc["function"]["parameters"]["required"],
        json!(["expression"])
    );
    assert!(
        requests[0]
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer test-key")
    );
    let answers = tool_messages(&requests[1].body);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].1, "42.0");
    // The assistant's tool-call message precedes the tool message, with the same id.
    let msgs = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(
        msgs[2]["tool_calls"][0]["id"].as_str().unwrap(),
        answers[0].0
    );
    assert_eq!(out.messages.len(), 3, "assistant call, tool result, answer");
}

#[tokio::test]
async fn parallel_calls_keep_call_order_with_one_message_each() {
    let s = setup().await;
    s.mock.push(Reply::ToolCalls(vec![
        ToolCall::new("calculator_evaluate", json!({"expression": "1 + 1"})),
        ToolCall::new("slow_sleep", json!({"ms": 150})),
        ToolCall::new("clock_now", json!({})),
        ToolCall::new("calculator_evaluate", json!({"expression": "2 + 2"})),
    ]));
    s.mock.push(Reply::text("done"));
    let out = s.agent.run(&user("go"), None).await.unwrap();
    let names: Vec<&str> = out.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "calculator_evaluate",
            "slow_sleep",
            "clock_now",
            "calculator_evaluate"
        ]
    );
    assert_eq!(out.steps[0].result, Some(json!(2.0)));
    assert_eq!(out.steps[3].result, Some(json!(4.0)));
    let answers = tool_messages(&s.mock.requests()[1].body);
    let ids: Vec<&str> = out.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        answers
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(answers[3].1, "4.0");
}

#[tokio::test]
async fn chained_calls_feed_results_forward() {
    let s = setup().await;
    s.mock.push(Reply::tool(
        "calculator_evaluate",
        json!({"expression": "2 ^ 10"}),
    ));
    s.mock.push(Reply::tool(
        "calculator_evaluate",
        json!({"expression": "1024 / 4"}),
    ));
    s.mock.push(Reply::text("256"));
    let out = s.agent.run(&user("chain"), None).await.unwrap();
    assert_eq!((out.steps.len(), out.iterations), (2, 3));
    assert_eq!(tool_messages(&s.mock.requests()[2].body).len(), 2);
}

#[tokio::test]
async fn unknown_tools_and_bad_arguments_come_back_as_correctable_errors() {
    let s = setup().await;
    s.mock.push(Reply::tool("no_such_tool", json!({})));
    s.mock.push(Reply::ToolCalls(vec![ToolCall::raw(
        "calculator_evaluate",
        "{\"expression\": ",
    )]));
    s.mock
        .push(Reply::tool("calculator_evaluate", json!({"expression": 5})));
    s.mock.push(Reply::tool(
        "calculator_evaluate",
        json!({"expression": "5"}),
    ));
    s.mock.push(Reply::text("5"));
    let out = s.agent.run(&user("try"), None).await.unwrap();
    assert_eq!(out.finish_reason, FinishReason::Stop);
    let codes: Vec<Option<&str>> = out
        .steps
        .iter()
        .map(|s| s.error.as_ref().map(|e| e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            Some("unknown_tool"),
            Some("invalid_arguments"),
            Some("invalid_arguments"),
            None
        ]
    );
    let requests = s.mock.requests();
    let unknown = &tool_messages(&requests[1].body)[0].1;
    assert!(
        unknown.contains("unknown_tool") && unknown.contains("calculator_evaluate"),
        "{unknown}"
    );
    let not_json = &tool_messages(&requests[2].body)[1].1;
    assert!(not_json.contains("not valid JSON"), "{not_json}");
    let wrong_type = &tool_messages(&requests[3].body)[2].1;
    assert!(
        wrong_type.contains("$.expression") && wrong_type.contains("expected a string"),
        "{wrong_type}"
    );
}

#[tokio::test]
async fn traps_and_timeouts_are_reported_to_the_model() {
    let s = setup().await;
    s.mock.push(Reply::ToolCalls(vec![
        ToolCall::new("trap_panic", json!({"message": "kaboom"})),
        ToolCall::new("spin_forever", json!({})),
    ]));
    s.mock.push(Reply::text("both failed"));
    let out = s.agent.run(&user("break things"), None).await.unwrap();
    assert_eq!(out.content, "both failed");
    let answers = tool_messages(&s.mock.requests()[1].body);
    assert!(
        answers[0].1.contains("\"trap\"") && answers[0].1.contains("kaboom"),
        "{}",
        answers[0].1
    );
    assert!(answers[1].1.contains("\"timeout\""), "{}", answers[1].1);
}

#[tokio::test]
async fn max_iterations_stops_the_loop_with_a_summary() {
    let s = setup_with(|_, c| c.max_iterations = 3).await;
    s.mock.respond_with(|body| {
        if body.get("tools").is_some() {
            Reply::tool("calculator_evaluate", json!({"expression": "1 + 1"}))
        } else {
            Reply::text("summary without tools")
        }
    });
    let out = s.agent.run(&user("loop forever"), None).await.unwrap();
    assert_eq!(out.finish_reason, FinishReason::MaxIterations);
    assert_eq!(out.steps.len(), 3);
    assert_eq!(out.content, "summary without tools");
    assert_eq!(s.mock.request_count(), 4);
}

#[tokio::test]
async fn rate_limit_then_success_is_retried_after_retry_after() {
    let s = setup().await;
    s.mock.push(Reply::Error {
        status: 429,
        body: json!({"error": {"message": "slow down"}}).to_string(),
        retry_after: Some("0".into()),
    });
    s.mock.push(Reply::text("ok"));
    let out = s.agent.run(&user("hi"), None).await.unwrap();
    assert_eq!(out.content, "ok");
    assert_eq!(s.mock.request_count(), 2);
}

#[tokio::test]
async fn server_errors_exhaust_retries_with_a_clear_error() {
    let s = setup().await;
    for _ in 0..3 {
        s.mock.push(Reply::error(500, "upstream exploded"));
    }
    let err = s.agent.run(&user("hi"), None).await.unwrap_err();
    let TurnError::Llm(LlmError::Status { status, .. }) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 500);
    let text = err.to_string();
    assert!(
        text.contains("`mock`") && text.contains("upstream exploded") && text.contains("retries"),
        "{text}"
    );
    assert_eq!(s.mock.request_count(), 3, "first attempt + 2 retries");
}

#[tokio::test]
async fn auth_errors_are_not_retried() {
    let s = setup().await;
    s.mock.push(Reply::error(401, "bad key"));
    let err = s
        .agent
        .run(&user("hi"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("401") && err.contains("bad key") && err.contains("LAUNCH_LLM_API_KEY"),
        "{err}"
    );
    assert_eq!(s.mock.request_count(), 1);
}

#[tokio::test]
async fn missing_key_says_what_to_set() {
    let s = setup_with(|p, _| p.api_key = None).await;
    let err = s
        .agent
        .run(&user("hi"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no API key") && err.contains("LAUNCH_LLM_API_KEY"),
        "{err}"
    );
    assert_eq!(s.mock.request_count(), 0);
}

#[tokio::test]
async fn garbage_and_hangs_fail_cleanly() {
    let s = setup_with(|p, _| {
        p.request_timeout = Duration::from_millis(300);
        p.max_retries = 0;
    })
    .await;
    s.mock.push(Reply::Garbage("<html>oops</html>".into()));
    let err = s
        .agent
        .run(&user("hi"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid response") && err.contains("oops"),
        "{err}"
    );
    s.mock.push(Reply::Hang);
    let start = Instant::now();
    let err = s
        .agent
        .run(&user("hi"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not answer within 0.3s"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn malformed_and_cut_streams_are_errors_not_answers() {
    let s = setup_with(|p, _| p.max_retries = 0).await;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    s.mock.push(Reply::Garbage("{broken".into()));
    let err = s
        .agent
        .run(&user("hi"), Some(&tx))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not JSON"), "{err}");
    s.mock.push(Reply::CutStream { chunks: 2 });
    let err = s
        .agent
        .run(&user("hi"), Some(&tx))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ended before the answer was complete") || err.contains("broke"),
        "{err}"
    );
}

#[tokio::test]
async fn streaming_and_plain_turns_agree() {
    let script = || {
        vec![
            Reply::ToolCalls(vec![
                ToolCall::new("calculator_evaluate", json!({"expression": "3 * 3"})),
                ToolCall::new("calculator_evaluate", json!({"expression": "sqrt(81)"})),
            ]),
            Reply::text("Both give nine, as expected by everyone."),
        ]
    };
    let s = setup().await;
    s.mock.push_all(script());
    let plain = s.agent.run(&user("nine?"), None).await.unwrap();
    s.mock.push_all(script());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let streamed = s.agent.run(&user("nine?"), Some(&tx)).await.unwrap();
    drop(tx);
    assert_eq!(plain.content, streamed.content);
    assert_eq!(plain.finish_reason, streamed.finish_reason);
    let summary = |o: &launch::agent::TurnOutcome| {
        o.steps
            .iter()
            .map(|s| (s.name.clone(), s.arguments.clone(), s.result.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&plain), summary(&streamed));
    assert!(s.mock.requests()[2].body["stream"] == json!(true));

    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            Event::Delta { content } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, streamed.content);
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Delta { .. }))
            .count()
            >= 3,
        "answer streamed in pieces"
    );
    let started = events
        .iter()
        .filter(|e| matches!(e, Event::ToolStarted { .. }))
        .count();
    let finished: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::ToolFinished(step) => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!((started, finished.len()), (2, 2));
    assert!(finished.iter().all(|s| s.duration_ms > 0.0));
    assert!(matches!(
        events.last(),
        Some(Event::Done {
            finish_reason: FinishReason::Stop,
            ..
        })
    ));
}

#[tokio::test]
async fn cancelling_a_turn_stops_its_running_tool_calls() {
    let s = setup().await;
    s.mock.push(Reply::tool("slow_sleep", json!({"ms": 5000})));
    let agent = s.agent.clone();
    let turn = tokio::spawn(async move { agent.run(&user("wait"), None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    turn.abort();
    assert!(turn.await.unwrap_err().is_cancelled());
    // `slow` allows one call at a time: if the cancelled call still ran, this would wait ~5 s.
    let start = Instant::now();
    s.mock.push(Reply::tool("slow_sleep", json!({"ms": 1})));
    s.mock.push(Reply::text("quick"));
    let out = s.agent.run(&user("again"), None).await.unwrap();
    assert_eq!(out.content, "quick");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the cancelled call kept its slot: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn turn_budget_ends_the_turn_with_timeout() {
    let s = setup_with(|_, c| c.turn_timeout = Duration::from_millis(400)).await;
    s.mock.push(Reply::tool("slow_sleep", json!({"ms": 5000})));
    let start = Instant::now();
    let out = s.agent.run(&user("wait"), None).await.unwrap();
    assert_eq!(out.finish_reason, FinishReason::Timeout);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // The unfinished call is still accounted for, and answered in the transcript.
    assert_eq!(out.steps.len(), 1);
    assert_eq!(out.steps[0].error.as_ref().unwrap().code, "timeout");
    assert_eq!(
        out.messages.len(),
        2,
        "assistant tool call + its tool message"
    );
    assert_eq!(
        out.messages[1].tool_call_id,
        out.messages[0].tool_calls.first().map(|c| c.id.clone())
    );
}

#[tokio::test]
async fn embeddings_endpoint_returns_one_vector_per_input_in_order() {
    let mock = MockLlm::start().await;
    let client = LlmClient::new(provider_config(&mock)).unwrap();
    let inputs = vec![
        "my dog is called Rex".to_owned(),
        "what is my dog called".to_owned(),
        "quarterly tax forms".to_owned(),
    ];
    let vectors = client.embed(&inputs).await.unwrap();
    assert_eq!(vectors.len(), 3);
    assert!(
        vectors
            .iter()
            .all(|v| v.len() == launch_tests::mock_llm::EMBEDDING_DIM)
    );
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(cos(&vectors[0], &vectors[1]) > cos(&vectors[0], &vectors[2]));
    let request = mock.last_request().unwrap();
    assert_eq!(request.path, "/v1/embeddings");
    assert_eq!(request.body["input"], json!(inputs));
}
