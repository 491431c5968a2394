// llama.cpp through node-llama-cpp (v3.x, prebuilt CPU binaries): pp512 and tg128 (greedy).
// From ../shared/perf/llamacpp_bench.mjs (the perf anchors), with the prompt and generation
// lengths as optional arguments. Run it with UV_THREADPOOL_SIZE=1: with libuv's default pool of 4
// consecutive decodes come from different threads and tg at 2 threads drops by a quarter.
// usage (run from a dir whose node_modules has node-llama-cpp; bench/vs_llamacpp.sh does):
//   node llamacpp_bench.mjs MODEL.gguf [threads=2,1] [ppReps=3] [tgReps=2] [pp=512] [tg=128]
//                           [depth=0]
// depth > 0 times tg after that many tokens in the cache (llama-bench's `-d`), untimed.
// Prints one JSON object per (threads) plus a header with backend info.
import {createRequire} from "node:module";
import path from "node:path";
import fs from "node:fs";

const require = createRequire(path.join(process.cwd(), "package.json"));
const nlcPath = require.resolve("node-llama-cpp");
const {getLlama, LlamaLogLevel} = await import(nlcPath);

const [, , modelPath, threadsArg = "2,1", ppRepsArg = "3", tgRepsArg = "2", ppArg = "512",
    tgArg = "128", depthArg = "0"] = process.argv;
const threadList = threadsArg.split(",").map(Number);
const ppReps = Number(ppRepsArg), tgReps = Number(tgRepsArg);
const PP = Number(ppArg), TG = Number(tgArg), DEPTH = Number(depthArg);

const logs = [];
const llama = await getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.debug,
    logger: (level, message) => { logs.push(`[${level}] ${message}`); },
});

const header = {
    nodeLlamaCppVersion: JSON.parse(fs.readFileSync(path.join(nlcPath.split("/dist/")[0], "package.json"), "utf8")).version,
    gpu: llama.gpu,
    buildType: llama.buildType,
    llamaCppRelease: llama.llamaCppRelease,
    cpuMathCores: llama.cpuMathCores,
    maxThreads: llama.maxThreads,
    systemInfo: llama.systemInfo,
    backendLogLines: logs.filter((l) => /backend|ggml-cpu|CPU/i.test(l)).slice(0, 20),
};

// R1_MMAP=0 reads the weights into memory on both sides (llama.cpp's --no-mmap), as r1 then does.
const useMmap = process.env.R1_MMAP !== "0";
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap});
// debug logging during evaluation forwards every ggml log line to JS; keep it quiet while timing
llama.logLevel = process.env.NLC_LOG === "debug" ? LlamaLogLevel.debug : LlamaLogLevel.info;
header.model = {path: modelPath, useMmap, size: model.size, trainContextSize: model.trainContextSize,
    fileInfo: {arch: model.fileInfo.metadata?.general?.architecture}};
console.log(JSON.stringify({header}, null, 1));

const nowS = () => Number(process.hrtime.bigint()) / 1e9;
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

// deterministic pseudo-random prompt tokens (normal vocab range)
let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed; };
// Ids below the vocabulary size (the DeepSeek-V2-Lite GGUF has 102400; llama.cpp rejects others).
const vocab = Math.min(150000, Number(model.fileInfo?.metadata?.[model.fileInfo?.metadata?.general?.architecture]?.vocab_size ?? 150000));
const promptTokens = Array.from({length: PP}, () => rnd() % vocab);
const depthTokens = Array.from({length: DEPTH}, () => rnd() % vocab);

for (const t of threadList) {
    const context = await model.createContext({contextSize: Math.max(1024, PP + TG + 16, DEPTH + TG + 16), batchSize: PP, sequences: 1,
        threads: {ideal: t, min: t}, performanceTracking: true});
    const seq = context.getSequence();

    // prompt processing: one batch of 512 tokens into an empty KV cache
    const ppTimes = [];
    for (let r = 0; r < ppReps + 1; r++) {
        await seq.clearHistory();
        const t0 = nowS();
        await seq.evaluateWithoutGeneratingNewTokens(promptTokens);
        const dt = nowS() - t0;
        if (r > 0) ppTimes.push(dt); // first run = warm-up
    }

    // token generation: 128 single-token decodes from an empty KV cache (or after DEPTH tokens,
    // evaluated before the clock starts; not for the short warm-up), greedy
    const tgTimes = [];
    let lastTokens = [];
    for (let r = 0; r < tgReps + 1; r++) {
        await seq.clearHistory();
        if (DEPTH > 0 && r > 0) await seq.evaluateWithoutGeneratingNewTokens(depthTokens);
        const n = r === 0 ? Math.min(16, TG) : TG; // first run = short warm-up
        const t0 = nowS();
        let count = 0;
        const out = [];
        for await (const tok of seq.evaluate([promptTokens[0]], {temperature: 0})) {
            out.push(tok);
            if (++count >= n) break;
        }
        const dt = nowS() - t0;
        if (r > 0) { tgTimes.push(dt); lastTokens = out; }
    }
    const logStart = logs.length;
    try { await context.printTimings(); } catch (e) { logs.push("printTimings failed: " + e.message); }
    const timingLines = logs.slice(logStart).filter((l) => /eval time|load time|total time/.test(l));

    console.log(JSON.stringify({
        threads: t, currentThreads: context.currentThreads, flashAttention: context.flashAttention,
        batchSize: context.batchSize, contextSize: context.contextSize, depth: DEPTH,
        pp512_tok_s_median: PP / median(ppTimes), pp512_tok_s_best: PP / Math.min(...ppTimes),
        pp512_s: ppTimes,
        tg128_tok_s_median: TG / median(tgTimes), tg128_tok_s_best: TG / Math.min(...tgTimes),
        tg128_s: tgTimes, tg_first_tokens: lastTokens.slice(0, 8), llamaTimings: timingLines,
    }));
    await context.dispose();
}
const cpuLines = logs.filter((l) => /ggml-cpu|CPU backend|load_backend|cpu variant|score/i.test(l)).slice(0, 30);
console.log(JSON.stringify({backendLogLinesAll: cpuLines}, null, 1));
await model.dispose();
await llama.dispose();
