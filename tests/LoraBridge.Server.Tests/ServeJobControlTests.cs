using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LoraBridge.Engine;
using Microsoft.Extensions.Logging;

namespace LoraBridge.Server.Tests;

/// <summary>
/// Engine hooks that hold a job after a chosen step until the test resumes it, so "progress moves" and "interrupt
/// stops within a step" are checked at known steps instead of racing a fast model. Records every step it sees.
/// </summary>
public sealed class StepGate : IGenerationHooks
{
    private readonly Lock _lock = new();
    private Func<GenerationProgress, bool>? _pauseWhen;
    private TaskCompletionSource<GenerationProgress> _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _resume = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Steps reported since <see cref="Arm"/>.</summary>
    public ConcurrentQueue<GenerationProgress> Seen { get; } = new();

    /// <summary>Completes when the job is held at the next pause point.</summary>
    public Task<GenerationProgress> Paused
    {
        get { lock (_lock) return _paused.Task; }
    }

    /// <summary>Holds the job after every step matching <paramref name="pauseWhen"/>.</summary>
    public void Arm(Func<GenerationProgress, bool> pauseWhen)
    {
        lock (_lock)
        {
            Seen.Clear();
            _pauseWhen = pauseWhen;
        }
    }

    /// <summary>Stops holding and lets a held job go on.</summary>
    public void Disarm()
    {
        lock (_lock) _pauseWhen = null;
        Resume();
    }

    /// <summary>Lets the held job go on; the next pause point completes a new <see cref="Paused"/>.</summary>
    public void Resume()
    {
        TaskCompletionSource resume;
        lock (_lock)
        {
            resume = _resume;
            _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _resume = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        resume.TrySetResult();
    }

    /// <inheritdoc />
    public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct) => ValueTask.FromResult(request);

    /// <inheritdoc />
    public async ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct)
    {
        TaskCompletionSource<GenerationProgress> paused;
        Task resume;
        lock (_lock)
        {
            Seen.Enqueue(progress);
            if (_pauseWhen?.Invoke(progress) != true) return;
            paused = _paused;
            resume = _resume.Task;
        }
        paused.TrySetResult(progress);
        // Not tied to ct: the test interrupts while the job is held and the engine must notice on its own.
        await resume.WaitAsync(TimeSpan.FromMinutes(5)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct) => ValueTask.CompletedTask;
}

/// <summary>Collects log lines (level and message).</summary>
public sealed class ListLogProvider : ILoggerProvider
{
    /// <summary>Every line logged.</summary>
    public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Logger(this);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class Logger(ListLogProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue((logLevel, formatter(state, exception)));
    }
}

/// <summary>Progress, interrupt, checkpoint switching, hires fix and always-on scripts over HTTP on the demo models.</summary>
[Collection("serve")]
public sealed class ServeJobControlTests(ServeFixture f)
{
    private static StringContent Json(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    private static JsonObject Txt2Img(string prompt, long seed, int steps = 4, int size = 64) => new()
    {
        ["prompt"] = prompt, ["seed"] = seed, ["steps"] = steps, ["width"] = size, ["height"] = size, ["sampler_name"] = "Euler a", ["cfg_scale"] = 7,
    };

    private static async Task<JsonObject> OkJson(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private async Task<JsonObject> PostOk(string path, JsonObject body) => await OkJson(await f.Http.PostAsync(path, Json(body)));

    private static byte[] Image(JsonObject response, int index = 0) => Convert.FromBase64String((string)response["images"]![index]!);

    private static JsonObject Info(JsonObject response) => JsonNode.Parse((string)response["info"]!)!.AsObject();

    private async Task<JsonObject> Progress() => JsonNode.Parse(await f.Http.GetStringAsync("/sdapi/v1/progress"))!.AsObject();

    // Width and height from the PNG's IHDR chunk (bytes 16–23, big-endian).
    private static (int Width, int Height) PngSize(byte[] png) =>
        (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4)));

    private async Task<byte[]> EngineImage(WorkspaceSettings settings, GenerationRequest request)
    {
        var images = await new GenerationWorkspace(settings, f.Bridge).GenerateAsync(
            request with { OutputDir = Path.Combine(f.TempDir, "cli-" + Guid.NewGuid().ToString("N")) }, null, CancellationToken.None);
        return File.ReadAllBytes(Assert.Single(images).Path);
    }

    [Fact]
    public async Task ProgressMovesAndInterruptStopsWithinAStepReturningFinishedImagesAndRestoringTheWeights()
    {
        const string plain = "a red barn", withLora = "a red barn <lora:demo_style:1>";
        // The restore check needs no long job: a short LoRA-free one before and after is enough.
        var plainBefore = Image(await PostOk("/sdapi/v1/txt2img", Txt2Img(plain, 11)));
        var loraFirstBatch = Image(await PostOk("/sdapi/v1/txt2img", Txt2Img(withLora, 11, steps: 50)));

        // Hold the two-batch LoRA job after steps 2 and 4 of the first batch and step 3 of the second.
        f.Gate.Arm(p => (p.Batch == 0 && p.Step is 2 or 4) || (p.Batch == 1 && p.Step == 3));
        JsonObject interrupted;
        try
        {
            var body = Txt2Img(withLora, 11, steps: 50);
            body["n_iter"] = 2;
            var job = f.Http.PostAsync("/sdapi/v1/txt2img", Json(body));

            Assert.Equal(2, (await f.Gate.Paused.WaitAsync(TimeSpan.FromMinutes(5))).Step);
            var early = await Progress();
            Assert.Equal(2, (int)early["state"]!["sampling_step"]!);
            Assert.Equal(50, (int)early["state"]!["sampling_steps"]!);
            Assert.Equal("txt2img", (string)early["state"]!["job"]!);
            Assert.Equal(2.0 / 100, (double)early["progress"]!, 6);
            Assert.True((double)early["eta_relative"]! > 0);
            f.Gate.Resume();

            Assert.Equal(4, (await f.Gate.Paused.WaitAsync(TimeSpan.FromMinutes(5))).Step);
            var later = await Progress();
            Assert.Equal(4, (int)later["state"]!["sampling_step"]!);
            Assert.True((double)later["progress"]! > (double)early["progress"]!, $"progress did not move: {early} then {later}");
            f.Gate.Resume();

            var held = await f.Gate.Paused.WaitAsync(TimeSpan.FromMinutes(5));
            Assert.Equal((1, 3), (held.Batch, held.Step));
            Assert.Equal((50 + 3) / 100.0, (double)(await Progress())["progress"]!, 6);
            await PostOk("/sdapi/v1/interrupt", []);
            f.Gate.Resume();
            interrupted = await OkJson(await job.WaitAsync(TimeSpan.FromMinutes(5)));
        }
        finally
        {
            f.Gate.Disarm();
        }

        // Within a step: the step already queued behind step 3 may finish (the engine issues one ahead), no later one.
        int lastStep = f.Gate.Seen.Where(p => p.Batch == 1).Max(p => p.Step);
        Assert.InRange(lastStep, 3, 4);
        Assert.True((bool)(await Progress())["state"]!["interrupted"]!);

        // As A1111, the finished images come back: the first batch's, identical to the same seed run on its own.
        Assert.Single(interrupted["images"]!.AsArray());
        Assert.Equal(loraFirstBatch, Image(interrupted));
        var info = Info(interrupted);
        Assert.Equal(11, (long)info["all_seeds"]![0]!);
        Assert.Contains("Seed: 11", (string)info["infotexts"]![0]!);

        // Weights restored: the LoRA-free job gives the same bytes as before the interrupted LoRA job, and as a fresh engine.
        var plainAfter = Image(await PostOk("/sdapi/v1/txt2img", Txt2Img(plain, 11)));
        Assert.Equal(plainBefore, plainAfter);
        Assert.Equal(await EngineImage(f.Settings, new GenerationRequest
        {
            Prompt = plain, Seed = 11, Steps = 4, Width = 64, Height = 64, Sampler = "Euler a", CfgScale = 7, OutputDir = "",
        }), plainAfter);
    }

    [Fact]
    public async Task SkipDropsTheBatchBeingSampledAndRunsTheRest()
    {
        const string prompt = "a lighthouse <lora:demo_style:0.5>";
        f.Gate.Arm(p => p.BatchCount == 3 && p.Batch == 1 && p.Step == 3);
        JsonObject json;
        try
        {
            var body = Txt2Img(prompt, 30, steps: 8);
            body["n_iter"] = 3;
            var job = f.Http.PostAsync("/sdapi/v1/txt2img", Json(body));
            var held = await f.Gate.Paused.WaitAsync(TimeSpan.FromMinutes(5));
            Assert.Equal((1, 3), (held.Batch, held.Step));
            await PostOk("/sdapi/v1/skip", []);
            Assert.True((bool)(await Progress())["state"]!["skipped"]!);
            f.Gate.Resume();
            json = await OkJson(await job.WaitAsync(TimeSpan.FromMinutes(5)));
        }
        finally
        {
            f.Gate.Disarm();
        }
        // As A1111's n_iter loop: batch 2 (seed 31) is dropped, batches 1 and 3 (seeds 30 and 32) come back unchanged.
        var info = Info(json);
        Assert.Equal([30L, 32L], info["all_seeds"]!.AsArray().Select(n => (long)n!));
        Assert.Equal(2, json["images"]!.AsArray().Count);
        foreach (var (index, seed) in new[] { (0, 30L), (1, 32L) })
            Assert.Equal(await EngineImage(f.Settings, new GenerationRequest
            {
                Prompt = prompt, Seed = seed, Steps = 8, Width = 64, Height = 64, Sampler = "Euler a", CfgScale = 7, OutputDir = "",
            }), Image(json, index));
        Assert.False((bool)(await Progress())["state"]!["skipped"]!);
    }

    [Fact]
    public async Task InterruptWhenIdleChangesNothing()
    {
        await PostOk("/sdapi/v1/interrupt", []);
        await PostOk("/sdapi/v1/skip", []);
        var json = await PostOk("/sdapi/v1/txt2img", Txt2Img("a red barn", 21));
        Assert.Single(json["images"]!.AsArray());
    }

    [Fact]
    public async Task OptionsSwitchTheCheckpointBetweenTheSd1AndSdxlDemosAndBack()
    {
        try
        {
            await PostOk("/sdapi/v1/options", new JsonObject { ["sd_model_checkpoint"] = DemoCheckpoints.Sdxl });
            var options = JsonNode.Parse(await f.Http.GetStringAsync("/sdapi/v1/options"))!;
            Assert.Equal("lorabridge-demo-xl.safetensors", (string)options["sd_model_checkpoint"]!);

            const string xlPrompt = "a lighthouse <lora:demo_style_xl:0.8>";
            var xl = await PostOk("/sdapi/v1/txt2img", Txt2Img(xlPrompt, 3));
            var xlInfo = Info(xl);
            Assert.Equal("lorabridge-demo-xl", (string)xlInfo["sd_model_name"]!);
            Assert.Contains("Model: lorabridge-demo-xl", (string)xlInfo["infotexts"]![0]!);
            Assert.Equal((64, 64), PngSize(Image(xl)));
            // The same bytes as `generate --checkpoint lorabridge-demo-xl` (an SDXL workspace) gives.
            Assert.Equal(await EngineImage(f.Settings with { Checkpoint = DemoCheckpoints.Sdxl }, new GenerationRequest
            {
                Prompt = xlPrompt, Seed = 3, Steps = 4, Width = 64, Height = 64, Sampler = "Euler a", CfgScale = 7, OutputDir = "",
            }), Image(xl));
        }
        finally
        {
            await PostOk("/sdapi/v1/options", new JsonObject { ["sd_model_checkpoint"] = DemoCheckpoints.Sd1 });
        }
        var back = JsonNode.Parse(await f.Http.GetStringAsync("/sdapi/v1/options"))!;
        Assert.Equal("lorabridge-demo.safetensors", (string)back["sd_model_checkpoint"]!);
        var sd1 = await PostOk("/sdapi/v1/txt2img", Txt2Img("a red barn", 7));
        Assert.Equal("lorabridge-demo", (string)Info(sd1)["sd_model_name"]!);
        Assert.Equal(await EngineImage(f.Settings, new GenerationRequest
        {
            Prompt = "a red barn", Seed = 7, Steps = 4, Width = 64, Height = 64, Sampler = "Euler a", CfgScale = 7, OutputDir = "",
        }), Image(sd1));

        // An unknown checkpoint is a 404 and the SD1 demo stays.
        using var unknown = await f.Http.PostAsync("/sdapi/v1/options", Json(new JsonObject { ["sd_model_checkpoint"] = "no-such-model.safetensors" }));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("lorabridge-demo.safetensors", (string)JsonNode.Parse(await f.Http.GetStringAsync("/sdapi/v1/options"))!["sd_model_checkpoint"]!);
    }

    [Fact]
    public async Task Txt2ImgWithHiresFixMatchesTheEnginesHiresPath()
    {
        var body = Txt2Img("a lighthouse <lora:demo_style:0.6>", 9);
        body["enable_hr"] = true;
        body["hr_scale"] = 2;
        body["hr_upscaler"] = "Latent";
        body["hr_second_pass_steps"] = 3;
        body["denoising_strength"] = 0.6;
        var json = await PostOk("/sdapi/v1/txt2img", body);
        var png = Image(json);
        Assert.Equal((128, 128), PngSize(png));
        var info = Info(json);
        Assert.Equal(0.6, (double)info["denoising_strength"]!);
        Assert.Contains("Hires upscale: 2", (string)info["infotexts"]![0]!);
        Assert.Equal(await EngineImage(f.Settings, new GenerationRequest
        {
            Prompt = "a lighthouse <lora:demo_style:0.6>", Seed = 9, Steps = 4, Width = 64, Height = 64, Sampler = "Euler a", CfgScale = 7, OutputDir = "",
            Hires = new HiresSettings { Upscaler = "Latent", Scale = 2, Steps = 3, DenoisingStrength = 0.6 },
        }), png);
    }

    [Fact]
    public async Task AlwaysOnScriptsAreIgnoredWithAWarningAndExtensionsAreListed()
    {
        var body = Txt2Img("a red barn", 5);
        body["alwayson_scripts"] = new JsonObject
        {
            ["ADetailer"] = new JsonObject { ["args"] = new JsonArray(true) },
            ["PromptSuffix"] = new JsonObject { ["args"] = new JsonArray() },
        };
        var json = await PostOk("/sdapi/v1/txt2img", body);
        Assert.Single(json["images"]!.AsArray());
        var warnings = f.Log.Lines.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToList();
        Assert.Contains(warnings, w => w.Contains("'ADetailer' ignored: no such script or extension", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("arguments for extension 'PromptSuffix' ignored", StringComparison.Ordinal));

        var scripts = JsonNode.Parse(await f.Http.GetStringAsync("/sdapi/v1/scripts"))!;
        Assert.Equal(["promptsuffix"], scripts["txt2img"]!.AsArray().Select(n => (string)n!));
    }

    [Fact]
    public async Task ResponsesCarryTheEnginesOwnTimeInServerTiming()
    {
        using var response = await f.Http.PostAsync("/sdapi/v1/txt2img", Json(Txt2Img("a red barn", 6)));
        await OkJson(response);
        var timing = ServerTiming.Parse(string.Join(", ", response.Headers.GetValues("Server-Timing")));
        Assert.True(timing["engine"] > 0, $"engine time {timing["engine"]}");
        Assert.True(timing.ContainsKey("queue") && timing.ContainsKey("load"));
    }
}
