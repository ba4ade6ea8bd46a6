using LoraBridge.Engine;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine.Tests;

/// <summary>Plans "a" for the first half of the steps and "b" after, with a LoRA whose unet multiplier drops at half.</summary>
internal sealed class HalfwayPlanner : IPromptPlanner
{
    public GenerationPlan Plan(string prompt, string negativePrompt, int steps)
    {
        var list = new List<StepConditioning>();
        for (int i = 0; i < steps; i++)
        {
            bool first = i < steps / 2;
            list.Add(new StepConditioning([(first ? "a cat" : "a dog", 1.0)], negativePrompt,
                [new NetworkSetting("style", 0.5, first ? 1.0 : 0.25, null)]));
        }
        return new GenerationPlan(list, ["style"]);
    }

    public IReadOnlyList<(string Text, double Weight)> Attention(string text) => [(text, 1.0)];
}

/// <summary>A1111 batches: "a cat" twice then "a dog" for the AND part, the negative's schedule alone.</summary>
internal sealed class BatchingPlanner : IPromptPlanner
{
    public GenerationPlan Plan(string prompt, string negativePrompt, int steps) =>
        new([.. Enumerable.Range(0, steps).Select(i => new StepConditioning([(i < 2 ? "a cat" : "a dog", 1.0)], "blurry", []))], [])
        {
            PositiveBatches = [["a cat", "a cat", "a dog"]],
            NegativeBatch = ["blurry"],
        };

    public IReadOnlyList<(string Text, double Weight)> Attention(string text) =>
        text == "a dog" ? [.. Enumerable.Repeat((text + ",", 1.0), 60)] : [(text, 1.0)]; // "a dog" is 2 chunks long
}

public sealed class GenerationEngineTests : IDisposable
{
    private static string ClipDir => SharedData.ClipDir;
    private readonly string _out = Directory.CreateTempSubdirectory("lb-engine").FullName;

    public void Dispose() => Directory.Delete(_out, true);

    private static CheckpointContext Checkpoint(string path = "/models/demo.safetensors") =>
        new(path, Path.GetFileNameWithoutExtension(path), "0123456789", new PromptChunker(ClipTokenizer.FromDirectory(ClipDir)));

    private static GenerationEngine Engine(RecordingBackend backend) =>
        new(backend, new HalfwayPlanner(), name => new NetworkFile(name, $"/loras/{name}.safetensors", name + "_alias", "abcdef012345"));

    private GenerationRequest Request(int steps = 4) => new()
    {
        Prompt = "a cat <lora:style:0.5:1>", NegativePrompt = "blurry", Steps = steps, Seed = 7, Width = 64, Height = 64,
        BatchSize = 2, OutputDir = _out, Sampler = "DPM++ 2M",
    };

    [SharedFact]
    public async Task EncodesEachTextOnceAndChangesUnetWeightsOnlyWhenThePlanDoes()
    {
        var backend = new RecordingBackend();
        var images = await Engine(backend).GenerateAsync(Request(), Checkpoint());

        // "a cat", "a dog" and "blurry" under the one text-encoder state.
        Assert.Equal(3, backend.Calls.Count(c => c.StartsWith("encode", StringComparison.Ordinal)));
        // One command for the text encoder, then one per distinct UNet state (1.0, then 0.25); te never moves.
        Assert.Equal(["set style:0.5:0", "set style:0.5:1", "set style:0.5:0.25"], backend.Calls.Where(c => c.StartsWith("set", StringComparison.Ordinal)));
        Assert.Equal(4, backend.Calls.Count(c => c.StartsWith("step", StringComparison.Ordinal)));
        Assert.Equal(1, backend.Restores);
        Assert.Equal(["00000-7.png", "00001-8.png"], images.Select(i => Path.GetFileName(i.Path)));
        var info = Infotext.Parse(File.ReadAllText(images[1].Path));
        Assert.Equal("8", info["Seed"]);
        Assert.Equal("Karras", info["Schedule type"]);
        Assert.Equal("style_alias: abcdef012345", info["Lora hashes"]);
        Assert.Equal("blurry", info.NegativePrompt);
        Assert.Equal("a cat <lora:style:0.5:1>", info.Prompt);
    }

    [SharedFact]
    public async Task SecondGenerationReusesConditioningsUntilTheCheckpointChanges()
    {
        var backend = new RecordingBackend();
        var engine = Engine(backend);
        await engine.GenerateAsync(Request(), Checkpoint());
        int encodes = backend.Calls.Count(c => c.StartsWith("encode", StringComparison.Ordinal));
        await engine.GenerateAsync(Request() with { Seed = 9 }, Checkpoint());
        Assert.Equal(encodes, backend.Calls.Count(c => c.StartsWith("encode", StringComparison.Ordinal)));
        Assert.Equal(3, engine.CachedConditionings);

        await engine.GenerateAsync(Request(), Checkpoint("/models/other.safetensors"));
        Assert.Equal(2 * encodes, backend.Calls.Count(c => c.StartsWith("encode", StringComparison.Ordinal)));
        Assert.Equal(3, engine.CachedConditionings);
        Assert.Equal(3, backend.Live.Count); // the first checkpoint's conditionings were released
    }

    [SharedFact]
    public async Task AnEarlyCheckpointLoadIsTheFirstJobsLoadAndIsCountedOnce()
    {
        var backend = new RecordingBackend();
        var engine = Engine(backend);
        engine.BeginCheckpointLoad("/models/demo.safetensors", CancellationToken.None);
        Assert.Equal(["load /models/demo.safetensors"], backend.Calls); // issued before any job

        var images = await engine.GenerateAsync(Request(), Checkpoint());
        await engine.GenerateAsync(Request() with { Seed = 9 }, Checkpoint());

        Assert.Single(backend.Calls, c => c.StartsWith("load", StringComparison.Ordinal));
        Assert.Equal(1, engine.CheckpointLoads);
        Assert.Equal(2, images.Count);
        Assert.True(backend.Calls.IndexOf("load /models/demo.safetensors") < backend.Calls.FindIndex(c => c.StartsWith("encode", StringComparison.Ordinal)));
    }

    [SharedFact]
    public async Task AnEarlyLoadOfAnotherCheckpointIsReplacedByTheJobsOwn()
    {
        var backend = new RecordingBackend();
        var engine = Engine(backend);
        engine.BeginCheckpointLoad("/models/other.safetensors", CancellationToken.None);
        await engine.GenerateAsync(Request(), Checkpoint());
        Assert.Equal(["load /models/other.safetensors", "load /models/demo.safetensors"],
            backend.Calls.Where(c => c.StartsWith("load", StringComparison.Ordinal)));
        Assert.Equal(1, engine.CheckpointLoads);
    }

    [SharedFact]
    public async Task AFailedEarlyLoadFailsTheJobThatTakesItAndWritesNothing()
    {
        var backend = new RecordingBackend { NextLoadFailure = new InvalidDataException("/models/demo.safetensors: truncated header") };
        var engine = Engine(backend);
        engine.BeginCheckpointLoad("/models/demo.safetensors", CancellationToken.None);
        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => engine.GenerateAsync(Request(), Checkpoint()));
        Assert.Contains("truncated header", ex.Message);
        Assert.Empty(Directory.GetFiles(_out));
        Assert.Equal(0, engine.CheckpointLoads);
        Assert.DoesNotContain(backend.Calls, c => c.StartsWith("step", StringComparison.Ordinal));

        // The next job loads again (nothing is left pending).
        await engine.GenerateAsync(Request(), Checkpoint());
        Assert.Equal(1, engine.CheckpointLoads);
    }

    [SharedFact]
    public async Task CancellingMidwayRestoresWeightsAndWritesNothing()
    {
        var backend = new RecordingBackend();
        using var cts = new CancellationTokenSource();
        backend.OnStep = step => { if (step == 2) cts.Cancel(); };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Engine(backend).GenerateAsync(Request(), Checkpoint(), ct: cts.Token));
        Assert.Equal("restore", backend.Calls[^1]);
        Assert.Empty(Directory.GetFiles(_out));
        Assert.Equal(3, backend.Live.Count); // the sampling run was released; cached conditionings stay
    }

    [SharedFact]
    public async Task BackendFailureRestoresWeightsReleasesTheRunAndWritesNothing()
    {
        var backend = new RecordingBackend { FailAtStep = 3 };
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => Engine(backend).GenerateAsync(Request(), Checkpoint()));
        Assert.Equal("model failed", ex.Message);
        Assert.Equal(1, backend.Restores);
        Assert.Empty(Directory.GetFiles(_out));
        Assert.Equal(3, backend.Live.Count); // only the cached conditionings remain
    }

    [SharedFact]
    public async Task ScheduleTextsAreEncodedTogetherAsA1111Batches()
    {
        var backend = new RecordingBackend();
        var engine = new GenerationEngine(backend, new BatchingPlanner(), name => throw new InvalidOperationException(name));
        await engine.GenerateAsync(Request(), Checkpoint());
        // The part's whole schedule in one batch (the repeat counts in A1111's emphasis mean), the negative alone.
        Assert.Equal([3, 1], backend.BatchSizes);
        Assert.Equal(3, engine.CachedConditionings); // "a cat", "a dog", "blurry": the repeat's handle was released
        Assert.Equal(3, backend.Live.Count);
    }

    [SharedFact]
    public async Task ANetworkWhoseLoadFailedIsLoadedAgainByTheNextJob()
    {
        var backend = new RecordingBackend { FailNextNetworkLoad = true };
        var engine = Engine(backend);
        await Assert.ThrowsAsync<InvalidDataException>(() => engine.GenerateAsync(Request(), Checkpoint()));
        Assert.Empty(Directory.GetFiles(_out));
        await engine.GenerateAsync(Request(), Checkpoint());
        Assert.Equal(2, backend.Calls.Count(c => c == "network style"));
        Assert.Equal(2, Directory.GetFiles(_out).Length);
    }

    [SharedFact]
    public async Task BatchCountAdvancesSeedsByBatchSize()
    {
        var backend = new RecordingBackend();
        var images = await Engine(backend).GenerateAsync(Request() with { BatchCount = 2 }, Checkpoint());
        Assert.Equal([7L, 8L, 9L, 10L], images.Select(i => i.Seed));
        Assert.Equal(["start seed=7 batch=2", "start seed=9 batch=2"], backend.Calls.Where(c => c.StartsWith("start", StringComparison.Ordinal)));
    }

    [SharedFact]
    public async Task DdimUsesTheBackendsCallCountAndTheLastPlanEntry()
    {
        var backend = new RecordingBackend { TotalCalls = 3 };
        await Engine(backend).GenerateAsync(Request() with { Sampler = "DDIM" }, Checkpoint());
        Assert.Equal(3, backend.Calls.Count(c => c.StartsWith("step", StringComparison.Ordinal)));
    }

    [SharedTheory]
    [InlineData(0, 64)]
    [InlineData(4, 63)]
    public async Task InvalidRequestsAreRejectedBeforeAnyWork(int steps, int width)
    {
        var backend = new RecordingBackend();
        await Assert.ThrowsAsync<ArgumentException>(() => Engine(backend).GenerateAsync(Request(steps) with { Width = width }, Checkpoint()));
        Assert.Empty(backend.Calls);
    }
}
