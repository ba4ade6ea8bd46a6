using LoraBridge.Engine;
using LoraBridge.Tokenizers;

namespace LoraBridge.Extensions.Tests;

public sealed class EngineHookTests : IDisposable
{
    private static string ClipDir => SharedData.ClipDir;
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-ext-engine").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static CheckpointContext Checkpoint() =>
        new("/models/demo.safetensors", "demo", null, new PromptChunker(ClipTokenizer.FromDirectory(ClipDir)));

    private static GenerationEngine Engine(List<string> calls, out RecordingBackend backend)
    {
        backend = new RecordingBackend(calls);
        return new GenerationEngine(backend, new RecordingPlanner(calls), n => new NetworkFile(n, $"/loras/{n}.safetensors", n, null));
    }

    private GenerationRequest Request() => new()
    {
        Prompt = "a cat", Steps = 3, Seed = 5, Width = 64, Height = 64, BatchSize = 2, OutputDir = Path.Combine(_dir, "out"),
    };

    /// <summary>Records hook calls into the same list as the backend, so their order relative to the engine's work shows.</summary>
    private const string Recorder = """
        public sealed class Recorder : ILoraBridgeExtension
        {
            public static List<string>? Calls;
            public static int FailAtStep;
            public string Name => "Recorder";
            public string Description => "records";
            public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest r, CancellationToken ct)
            {
                Calls!.Add($"before {r.Prompt}");
                return ValueTask.FromResult(r with { Prompt = r.Prompt + ", oil painting" });
            }
            public ValueTask AfterStepAsync(GenerationProgress p, CancellationToken ct)
            {
                if (p.Step == FailAtStep) throw new InvalidOperationException("hook broke");
                Calls!.Add($"after step {p.Step}/{p.TotalSteps}");
                return ValueTask.CompletedTask;
            }
            public ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct)
            {
                Calls!.Add($"after image {Path.GetFileName(image.Path)} exists={File.Exists(image.Path)} seed={image.Seed} prompt={image.Infotext.Split('\n')[0]}");
                return ValueTask.CompletedTask;
            }
        }
        """;

    private ExtensionSet LoadRecorder(List<string> calls, int failAtStep = 0)
    {
        File.WriteAllText(Path.Combine(_dir, "Recorder.cs"), Recorder);
        var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));
        var ext = Assert.Single(set.Extensions);
        ext.GetType().GetField("Calls")!.SetValue(null, calls);
        ext.GetType().GetField("FailAtStep")!.SetValue(null, failAtStep);
        return set;
    }

    [SharedFact]
    public async Task EngineCallsHooksInOrder()
    {
        var calls = new List<string>();
        using var set = LoadRecorder(calls);
        var engine = Engine(calls, out var backend);
        engine.Hooks = set;

        var images = await engine.GenerateAsync(Request(), Checkpoint());

        Assert.Equal(
        [
            "before a cat",
            "plan a cat, oil painting",
            "load /models/demo.safetensors",
            "network style",
            "set ",
            "encode 1", "encode 2",
            "start seed=5 batch=2",
            // an after-step hook sees step i before step i+1 is issued (without one the engine queues ahead)
            "set style:0:1", "step 1 / 2", "after step 1/3", "step 1 / 2", "after step 2/3", "step 1 / 2", "after step 3/3",
            "after image 00000-5.png exists=True seed=5 prompt=a cat, oil painting",
            "after image 00001-6.png exists=True seed=6 prompt=a cat, oil painting",
            "release 3",
            "restore",
        ], calls);
        Assert.Equal(2, images.Count);
        Assert.Equal(1, backend.Restores);
    }

    [SharedFact]
    public async Task FailingHookFailsTheJobNamingTheExtensionAndWeightsAreRestored()
    {
        var calls = new List<string>();
        using var set = LoadRecorder(calls, failAtStep: 2);
        var engine = Engine(calls, out var backend);
        engine.Hooks = set;

        var ex = await Assert.ThrowsAsync<ExtensionException>(() => engine.GenerateAsync(Request(), Checkpoint()));

        Assert.Equal("Recorder", ex.Extension);
        Assert.Equal("AfterStepAsync", ex.Hook);
        Assert.Equal("extension 'Recorder' failed in AfterStepAsync: hook broke", ex.Message);
        Assert.Contains("after step 1/3", calls);
        Assert.Equal(1, backend.Restores);
        Assert.Equal("restore", calls[^1]);
        Assert.DoesNotContain(calls, c => c.StartsWith("after image", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(_dir, "out")) && Directory.EnumerateFiles(Path.Combine(_dir, "out")).Any());
    }

    private sealed class Rewriter(Func<GenerationRequest, GenerationRequest> rewrite) : IGenerationHooks
    {
        public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct) => ValueTask.FromResult(rewrite(request));
        public ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct) => ValueTask.CompletedTask;
        public ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct) => ValueTask.CompletedTask;
    }

    [SharedFact]
    public async Task RewrittenRequestIsValidatedBeforeAnythingIsLoaded()
    {
        var calls = new List<string>();
        var engine = Engine(calls, out var backend);
        engine.Hooks = new Rewriter(r => r with { Width = 65 });
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => engine.GenerateAsync(Request(), Checkpoint()));
        Assert.Contains("65x64", ex.Message);
        Assert.Empty(calls);
    }

    [SharedFact]
    public async Task CancellationFromAHookIsNotWrapped()
    {
        File.WriteAllText(Path.Combine(_dir, "Cancel.cs"), """
            public sealed class Cancel : ILoraBridgeExtension
            {
                public string Name => "Cancel";
                public string Description => "";
                public ValueTask AfterStepAsync(GenerationProgress p, CancellationToken ct) => throw new OperationCanceledException();
            }
            """);
        using var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));
        var calls = new List<string>();
        var engine = Engine(calls, out var backend);
        engine.Hooks = set;
        await Assert.ThrowsAsync<OperationCanceledException>(() => engine.GenerateAsync(Request(), Checkpoint()));
        Assert.Equal(1, backend.Restores);
    }

    [SharedFact]
    public async Task ExtensionsWithoutSamplingHooksKeepTheQueuedSteps()
    {
        File.WriteAllText(Path.Combine(_dir, "JobOnly.cs"), """
            public sealed class JobOnly : ILoraBridgeExtension
            {
                public string Name => "JobOnly";
                public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest r, CancellationToken ct) => ValueTask.FromResult(r);
            }
            """);
        using var set = ExtensionLoader.Load([_dir], new TestHost(Path.Combine(_dir, "data")));
        var calls = new List<string>();
        var engine = Engine(calls, out var backend);
        engine.Hooks = set;
        Assert.False(set.HasAfterStep || set.HasAfterCfg || set.HasBeforeImageSaved);
        await engine.GenerateAsync(Request(), Checkpoint());
        var plainCalls = new List<string>();
        await Engine(plainCalls, out _).GenerateAsync(Request(), Checkpoint());
        Assert.Equal(plainCalls, calls);
    }

    [SharedFact]
    public async Task EngineWithoutHooksIsUnchanged()
    {
        var calls = new List<string>();
        var engine = Engine(calls, out _);
        await engine.GenerateAsync(Request(), Checkpoint());
        Assert.Equal("plan a cat", calls[0]);
    }
}
