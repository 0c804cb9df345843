// The AWS SDK for JavaScript v3 against a Bedrock Runtime endpoint: InvokeModel,
// InvokeModelWithResponseStream, Converse and ConverseStream, as a customer's code calls
// them. Configuration comes from the environment as a customer sets it:
//   AWS_ENDPOINT_URL_BEDROCK_RUNTIME (or ENDPOINT), AWS_BEARER_TOKEN_BEDROCK,
//   NODE_EXTRA_CA_CERTS, MODEL_ID, NODE_PATH (where the SDK is installed)
// Prints one JSON object: per operation its request id, the answer and the usage.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const {
  BedrockRuntimeClient,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ConverseCommand,
  ConverseStreamCommand,
} = require("@aws-sdk/client-bedrock-runtime");
const { NodeHttpHandler } = require("@smithy/node-http-handler");

const model = process.env.MODEL_ID;
const client = new BedrockRuntimeClient({
  region: "us-east-1",
  endpoint: process.env.ENDPOINT || process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
  // The SDK's default handler speaks HTTP/2; the local servers speak HTTP/1.1.
  requestHandler: new NodeHttpHandler(),
  maxAttempts: Number(process.env.MAX_ATTEMPTS || 3),
});
const decoder = new TextDecoder();
const anthropicBody = (text) =>
  JSON.stringify({
    anthropic_version: "bedrock-2023-05-31",
    max_tokens: 60,
    messages: [{ role: "user", content: [{ type: "text", text }] }],
  });
const messages = (text) => [{ role: "user", content: [{ text }] }];

function failure(err) {
  return {
    error: err.name,
    message: err.message,
    status: err.$metadata?.httpStatusCode ?? null,
    attempts: err.$metadata?.attempts ?? null,
  };
}

async function run(name, fn) {
  try {
    return await fn();
  } catch (err) {
    return failure(err);
  }
}

const only = (process.env.OPERATIONS || "invoke,invokeStream,converse,converseStream").split(",");
const result = {};

if (only.includes("invoke")) {
  result.invoke = await run("invoke", async () => {
    const out = await client.send(
      new InvokeModelCommand({
        modelId: model,
        contentType: "application/json",
        accept: "application/json",
        body: anthropicBody("Invoke from JavaScript"),
      }),
    );
    return {
      requestId: out.$metadata.requestId,
      attempts: out.$metadata.attempts,
      contentType: out.contentType,
      body: JSON.parse(decoder.decode(out.body)),
    };
  });
}

if (only.includes("invokeStream")) {
  result.invokeStream = await run("invokeStream", async () => {
    const out = await client.send(
      new InvokeModelWithResponseStreamCommand({
        modelId: model,
        contentType: "application/json",
        body: anthropicBody("Stream from JavaScript"),
      }),
    );
    const chunks = [];
    for await (const event of out.body) {
      if (event.chunk) chunks.push(JSON.parse(decoder.decode(event.chunk.bytes)));
      else chunks.push({ other: Object.keys(event) });
    }
    return { requestId: out.$metadata.requestId, chunks };
  });
}

if (only.includes("converse")) {
  result.converse = await run("converse", async () => {
    const out = await client.send(
      new ConverseCommand({
        modelId: model,
        messages: messages("Converse from JavaScript"),
        inferenceConfig: { maxTokens: 60 },
      }),
    );
    return {
      requestId: out.$metadata.requestId,
      text: out.output.message.content.map((b) => b.text).join(""),
      stopReason: out.stopReason,
      usage: out.usage,
    };
  });
}

if (only.includes("converseStream")) {
  result.converseStream = await run("converseStream", async () => {
    const out = await client.send(
      new ConverseStreamCommand({
        modelId: model,
        messages: messages("ConverseStream from JavaScript"),
        inferenceConfig: { maxTokens: 60 },
      }),
    );
    const events = [];
    let text = "";
    let usage = null;
    for await (const event of out.stream) {
      const [kind] = Object.keys(event);
      events.push(kind);
      if (event.contentBlockDelta) text += event.contentBlockDelta.delta.text ?? "";
      if (event.metadata) usage = event.metadata.usage;
    }
    return { requestId: out.$metadata.requestId, events, text, usage };
  });
}

process.stdout.write(JSON.stringify(result) + "\n");
