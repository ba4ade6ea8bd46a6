using LoraBridge.Engine;
using LoraBridge.Python;
using SkiaSharp;

namespace LoraBridge.Extensions.Tests;

/// <summary>
/// Before-model-call and batch hooks through the real embedded Python on the demo model, with extensions compiled by
/// the loader as in the CLI.
/// </summary>
[Collection("python")]
public sealed class ModelCallAndBatchHookTests(PythonHostFixture f) : HookTestBase(f, "lb-ext-model")
{
    private const string EditsPy = """
        import torch

        def blank(x: torch.Tensor) -> float:
            before = float(x.abs().sum())
            x.mul_(0)
            return before

        def swap(cond: torch.Tensor, uncond: torch.Tensor) -> list:
            old = cond.clone()
            cond.copy_(uncond)
            uncond.copy_(old)
            return list(cond.shape)
        """;

    [Fact]
    public async Task BeforeModelCallEditsOfXAndConditioningChangeTheImageDeterministically()
    {
        using var blank = Load(Extension("Blank", """
            public sealed class Blank : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public static List<string> Seen = new();
                public string Name => "Blank";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("model_edits");
                public async ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct)
                {
                    // Step 2 truly awaits first: its Python call then comes from a pool thread while the step waits.
                    if (step.Step == 2) await Task.Delay(5, ct).ConfigureAwait(false);
                    bool had = step.Step == 1 && (double)(await _py.CallAsync("blank", step.X))! > 0;
                    Seen.Add($"{step.Step}/{step.TotalSteps} sigma>0={step.Sigma > 0} had={had}");
                }
            }
            """, ("model_edits", EditsPy)));
        var plain = Assert.Single(await GenerateAsync(Request(3), null));
        var a = Assert.Single(await GenerateAsync(Request(3), blank));
        Assert.Equal(["1/4 sigma>0=True had=True", "2/4 sigma>0=True had=False", "3/4 sigma>0=True had=False", "4/4 sigma>0=True had=False"], Seen(blank));
        var b = Assert.Single(await GenerateAsync(Request(3), blank));
        Assert.Equal(File.ReadAllBytes(a.Path), File.ReadAllBytes(b.Path));
        Assert.True(MeanDiff(Pixels(a.Path), Pixels(plain.Path)) > 1, "zeroing the model's input at step 1 changed nothing");

        using var swap = Load(Extension("Swap", """
            public sealed class Swap : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public static List<string> Seen = new();
                public string Name => "Swap";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("model_swaps");
                public async ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct) =>
                    Seen.Add(string.Join("x", (List<object?>)(await _py.CallAsync("swap", step.Cond, step.Uncond))!));
            }
            """, ("model_swaps", EditsPy)));
        var request = Request(8, "a red fox") with { NegativePrompt = "" };
        var unswapped = Assert.Single(await GenerateAsync(request, null));
        var swapped = Assert.Single(await GenerateAsync(request, swap));
        Assert.Equal(4, Seen(swap).Count);
        Assert.Matches(@"^1x77x\d+$", Seen(swap)[0]);
        Assert.True(MeanDiff(Pixels(swapped.Path), Pixels(unswapped.Path)) > 1, "swapping cond and uncond changed nothing");
        // Swapping inside the model call is the job with prompt and negative prompt swapped (same pixels).
        var reversed = Assert.Single(await GenerateAsync(request with { Prompt = "", NegativePrompt = "a red fox" }, null));
        Assert.Equal(Pixels(reversed.Path), Pixels(swapped.Path));
        // The cached conditionings were not touched: the next plain job is the first one.
        Assert.Equal(File.ReadAllBytes(unswapped.Path), File.ReadAllBytes(Assert.Single(await GenerateAsync(request, null)).Path));
    }

    [Fact]
    public async Task SubscribersThatChangeNothingKeepTheBytes()
    {
        var plain = Assert.Single(await GenerateAsync(Request(7), null));
        using var set = Load(Extension("Look", """
            public sealed class Look : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public string Name => "Look";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("look_only");
                public async ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct) =>
                    await _py.CallAsync("look", step.X, step.Cond, step.Uncond);
                public ValueTask BeforeBatchAsync(BatchStart batch, CancellationToken ct) => ValueTask.CompletedTask;
                public ValueTask AfterBatchAsync(BatchDone batch, CancellationToken ct) => ValueTask.CompletedTask;
            }
            """, ("look_only", "def look(x, c, u):\n    return float(x.sum() + c.sum() + u.sum())\n")));
        Assert.True(set.HasBeforeModelCall && set.HasBatchHooks);
        Assert.False(set.HasAfterCfg || set.HasAfterStep || set.HasBeforeImageSaved);
        var hooked = Assert.Single(await GenerateAsync(Request(7), set));
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(hooked.Path));
    }

    [Fact]
    public async Task FailingBeforeModelCallHooksFailTheJobNamingTheExtension()
    {
        var baseDigest = await BaseDigestAsync();

        using (var boom = Load(Extension("ModelBoom", """
            public sealed class ModelBoom : ILoraBridgeExtension
            {
                public string Name => "ModelBoom";
                public ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct) =>
                    step.Step == 2 ? throw new InvalidOperationException("boom before call 2") : ValueTask.CompletedTask;
            }
            """)))
        {
            var request = Request(5);
            var ex = await Assert.ThrowsAsync<ExtensionException>(() => GenerateAsync(request, boom));
            Assert.Equal(("ModelBoom", "BeforeModelCallAsync"), (ex.Extension, ex.Hook));
            Assert.Contains("boom before call 2", ex.Message);
            Assert.False(Directory.Exists(request.OutputDir) && Directory.EnumerateFileSystemEntries(request.OutputDir).Any(), "a file was written");
            Assert.Equal(baseDigest, await Fixture.Bridge.GetWeightsDigestAsync());
        }

        using (var stale = Load(Extension("StaleX", """
            public sealed class StaleX : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                private DenoiserStep? _first;
                public string Name => "StaleX";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("stale_x");
                public async ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct)
                {
                    _first ??= step;
                    await _py.CallAsync("total", _first.X);
                }
            }
            """, ("stale_x", "def total(t):\n    return float(t.sum())\n"))))
        {
            var request = Request(5);
            var ex = await Assert.ThrowsAsync<ExtensionException>(() => GenerateAsync(request, stale));
            Assert.Equal(("StaleX", "BeforeModelCallAsync"), (ex.Extension, ex.Hook));
            var inner = Assert.IsType<ExtensionPythonException>(ex.InnerException);
            Assert.Equal(("StaleX", "LookupError"), (inner.Extension, inner.PythonType));
            Assert.Contains("(lent to the before-model-call hook of step 1 of 4) was used after its step", inner.Message);
            Assert.False(Directory.Exists(request.OutputDir) && Directory.EnumerateFileSystemEntries(request.OutputDir).Any(), "a file was written");
            Assert.Equal(baseDigest, await Fixture.Bridge.GetWeightsDigestAsync());
        }
        Assert.Single(await GenerateAsync(Request(5), null));
    }

    [Fact]
    public async Task HooksRunInJobBatchStepAndImageOrder()
    {
        using var set = Load(Extension("Order", """
            public sealed class Order : ILoraBridgeExtension
            {
                public static List<string> Seen = new();
                public string Name => "Order";
                public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest r, CancellationToken ct) { Seen.Add("job"); return ValueTask.FromResult(r); }
                public ValueTask BeforeBatchAsync(BatchStart b, CancellationToken ct) { Seen.Add($"before batch {b.Batch}/{b.BatchCount} seeds {string.Join(",", b.Seeds)}"); return ValueTask.CompletedTask; }
                public ValueTask BeforeModelCallAsync(DenoiserStep s, CancellationToken ct) { Seen.Add($"model {s.Step}"); return ValueTask.CompletedTask; }
                public ValueTask AfterCfgAsync(CfgStep s, CancellationToken ct) { Seen.Add($"cfg {s.Step}"); return ValueTask.CompletedTask; }
                public ValueTask AfterStepAsync(GenerationProgress p, CancellationToken ct) { Seen.Add($"step {p.Step}"); return ValueTask.CompletedTask; }
                public ValueTask BeforeImageSavedAsync(ImageToSave i, CancellationToken ct) { Seen.Add($"save {i.Seed}"); return ValueTask.CompletedTask; }
                public ValueTask AfterImageAsync(GeneratedImage i, CancellationToken ct) { Seen.Add($"image {i.Seed} {File.Exists(i.Path)}"); return ValueTask.CompletedTask; }
                public ValueTask AfterBatchAsync(BatchDone b, CancellationToken ct)
                {
                    Seen.Add($"after batch {b.Batch} seeds {string.Join(",", b.Seeds)} images {string.Join(",", b.Images.Select(i => i.Seed))}");
                    return ValueTask.CompletedTask;
                }
            }
            """));
        var images = await GenerateAsync(Request(100) with { Steps = 2, BatchSize = 2, BatchCount = 2 }, set);
        Assert.Equal([100L, 101, 102, 103], images.Select(i => i.Seed));
        List<string> Batch(int b, long s) =>
        [
            $"before batch {b}/2 seeds {s},{s + 1}", "model 1", "cfg 1", "step 1", "model 2", "cfg 2", "step 2",
            $"save {s}", $"save {s + 1}", $"image {s} True", $"image {s + 1} True", $"after batch {b} seeds {s},{s + 1} images {s},{s + 1}",
        ];
        Assert.Equal((List<string>)["job", .. Batch(0, 100), .. Batch(1, 102)], Seen(set));
    }
}
