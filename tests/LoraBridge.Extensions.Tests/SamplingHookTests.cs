using LoraBridge.Engine;
using LoraBridge.Python;
using SkiaSharp;

namespace LoraBridge.Extensions.Tests;

/// <summary>
/// Sampling and image hooks through the real embedded Python on the demo model: extensions with their own Python
/// modules, compiled by the loader as in the CLI.
/// </summary>
[Collection("python")]
public sealed class SamplingHookTests(PythonHostFixture f) : HookTestBase(f, "lb-ext-hooks")
{
    private const string ZeroCs = """
        public sealed class Zero : ILoraBridgeExtension
        {
            private IPythonModule _py = null!;
            public static List<string> Seen = new();
            public string Name => "Zero";
            public void Initialize(IExtensionHost host) => _py = host.ImportPython("zero_denoised");
            public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct)
            {
                // Every other step truly awaits first: its Python call then comes from a pool thread while the
                // Python thread waits inside the step.
                if (step.Step % 2 == 0) await Task.Delay(5, ct).ConfigureAwait(false);
                var before = (double)(await _py.CallAsync("zero", step.Denoised))!;
                Seen.Add($"{step.Step}/{step.TotalSteps} sigma>0={step.Sigma > 0} had={before > 0}");
            }
        }
        """;

    private const string ZeroPy = """
        import torch

        def zero(denoised: torch.Tensor) -> float:
            before = float(denoised.abs().sum())
            denoised.zero_()
            return before
        """;

    [Fact]
    public async Task AfterCfgZeroingDenoisedMakesThePictureIndependentOfSeedAndPrompt()
    {
        // Zero first, then the samples (hooks run in load order; unconfigured, the others do nothing): LatentPreview
        // previews the prediction Zero left, which is what the sampler uses.
        using var set = Load(Host(new Dictionary<string, string> { ["LatentPreview:Dir"] = "zero-previews" }),
            Extension("Zero", ZeroCs, ("zero_denoised", ZeroPy)), Samples);
        Assert.Equal("Zero", set.Extensions[0].Name);
        Assert.Contains("LatentPreview", set.Extensions.Skip(1).Select(e => e.Name));
        var seen = Seen(set);
        var a = Assert.Single(await GenerateAsync(Request(1), set));
        Assert.Equal(["1/4 sigma>0=True had=True", "2/4 sigma>0=True had=True", "3/4 sigma>0=True had=True", "4/4 sigma>0=True had=True"], seen);

        // A1111's "Approx cheap" preview is a linear map without bias, so the zeroed prediction of every step, the
        // last one included (with Euler a the last step's prediction is the final latent), is one grey: 0 → 0.5 → 127.
        var previews = Directory.GetFiles(Path.Combine(Dir, "data", "zero-previews", "job-0000")).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["step-001.png", "step-002.png", "step-003.png", "step-004.png"], previews.Select(Path.GetFileName));
        foreach (var preview in previews)
        {
            var rgba = Pixels(preview);
            Assert.Equal(8 * 8 * 4, rgba.Length);
            for (int i = 0; i < rgba.Length; i++) Assert.Equal(i % 4 == 3 ? 255 : 127, rgba[i]);
        }
        var b = Assert.Single(await GenerateAsync(Request(2, "a red fox"), set));
        var plain = Assert.Single(await GenerateAsync(Request(1), null));

        // Zeroed x0 predictions drive the latent to 0 (up to rounding), whatever the noise and prompt: the demo VAE's
        // picture of the zero latent. (Its random weights and zero padding do not make that one flat colour.)
        var pa = Pixels(a.Path);
        var pb = Pixels(b.Path);
        Assert.True(pa.Zip(pb, (x, y) => Math.Abs(x - y)).Max() <= 1, "the two zeroed runs differ");
        Assert.True(pa.Zip(Pixels(plain.Path), (x, y) => Math.Abs(x - y)).Average() > 10, "zeroing changed nothing");
    }

    [Fact]
    public async Task HooksRunInBothPassesOfAHiresJob()
    {
        using var set = Load(Extension("Passes", """
            public sealed class Passes : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public static List<string> Seen = new();
                public string Name => "Passes";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("shape_of");
                public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) =>
                    Seen.Add($"{step.Step}/{step.TotalSteps} {string.Join("x", (List<object?>)(await _py.CallAsync("shape", step.Denoised))!)}");
                public ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct)
                {
                    Seen.Add($"save {image.Width}x{image.Height} {image.Pixels.Length}");
                    return ValueTask.CompletedTask;
                }
            }
            """, ("shape_of", "def shape(t):\n    return list(t.shape)\n")));
        var seen = (List<string>)set.Extensions[0].GetType().GetField("Seen")!.GetValue(null)!;
        var request = Request(6) with { Hires = new HiresSettings { Scale = 2, Steps = 2, DenoisingStrength = 0.5 } };
        var image = Assert.Single(await GenerateAsync(request, set));
        // 4 first-pass calls on the 8x8 latent, then the hires pass on 16x16 counting from 1 again.
        Assert.Equal(["1/4 1x4x8x8", "2/4 1x4x8x8", "3/4 1x4x8x8", "4/4 1x4x8x8", "1/2 1x4x16x16", "2/2 1x4x16x16", "save 128x128 49152"], seen);
        using var bitmap = SKBitmap.Decode(image.Path);
        Assert.Equal((128, 128), (bitmap.Width, bitmap.Height));
    }

    [Fact]
    public async Task SubscribersThatChangeNothingKeepTheBytesOfARunWithoutExtensions()
    {
        var plain = Assert.Single(await GenerateAsync(Request(7), null));
        // Only BeforeJob: the queued fast path. AfterStep: one step at a time. AfterCfg + BeforeImageSaved: the
        // callback inside each step and the pixels → PNG path.
        using var set = Load(Extension("Quiet", """
            public sealed class Quiet : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public string Name => "Quiet";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("quiet");
                public ValueTask AfterStepAsync(GenerationProgress p, CancellationToken ct) => ValueTask.CompletedTask;
                public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) => await _py.CallAsync("look", step.Denoised);
                public ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct) => ValueTask.CompletedTask;
            }
            """, ("quiet", "def look(t):\n    return float(t.sum())\n")));
        var hooked = Assert.Single(await GenerateAsync(Request(7), set));
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(hooked.Path));

        using var jobOnly = Load(Extension("JobOnly", """
            public sealed class JobOnly : ILoraBridgeExtension
            {
                public string Name => "JobOnly";
                public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest r, CancellationToken ct) => ValueTask.FromResult(r);
            }
            """));
        Assert.False(jobOnly.HasAfterCfg || jobOnly.HasAfterStep || jobOnly.HasBeforeImageSaved);
        var fast = Assert.Single(await GenerateAsync(Request(7), jobOnly));
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(fast.Path));
    }

    [Fact]
    public async Task BeforeImageSavedChangesPixelsAndAddsAnInfotextParameter()
    {
        using var set = Load(Extension("Stamp", """
            public sealed class Stamp : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public string Name => "Stamp";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("stamp");
                public async ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct)
                {
                    image.Pixels = (byte[])(await _py.CallAsync("invert", image.Pixels, image.Width, image.Height))!;
                    image.Parameters["Stamp"] = $"inverted {image.Width}x{image.Height}";
                    image.Parameters["Steps"] = "4";
                }
            }
            """, ("stamp", "def invert(rgb, w, h):\n    assert len(rgb) == w * h * 3\n    return bytes(255 - b for b in rgb)\n")));
        var plain = Assert.Single(await GenerateAsync(Request(11), null));
        var stamped = Assert.Single(await GenerateAsync(Request(11), set));

        var parameters = PngText.Read(stamped.Path)["parameters"];
        Assert.Equal(stamped.Infotext, parameters);
        var info = Infotext.Parse(parameters);
        Assert.Equal("inverted 64x64", info["Stamp"]);
        // Added as A1111 adds extra_generation_params: after its own parameters, before "Version".
        Assert.Equal(["Stamp", "Version"], info.Parameters.TakeLast(2).Select(p => p.Key));
        Assert.Equal(Infotext.Parse(plain.Infotext).Parameters, info.Parameters.Where(p => p.Key != "Stamp"));
        var p = Pixels(plain.Path);
        var s = Pixels(stamped.Path);
        for (int i = 0; i < p.Length; i++)
            if (i % 4 != 3) Assert.Equal(255 - p[i], s[i]);
    }

    private const string BoomCs = """
        public sealed class Boom : ILoraBridgeExtension
        {
            public string Name => "Boom";
            public ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) =>
                step.Step == 3 ? throw new InvalidOperationException("boom at step 3") : ValueTask.CompletedTask;
        }
        """;

    [Fact]
    public async Task ThrowingHooksFailTheJobNamingTheExtensionRestoreWeightsAndWriteNothing()
    {
        var baseDigest = await BaseDigestAsync();
        foreach (var (name, code, hook, message) in new[]
        {
            ("Boom", BoomCs, "AfterCfgAsync", "boom at step 3"),
            ("SaveBoom", """
                public sealed class SaveBoom : ILoraBridgeExtension
                {
                    public string Name => "SaveBoom";
                    public ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct) { image.Pixels = new byte[5]; return ValueTask.CompletedTask; }
                }
                """, "BeforeImageSavedAsync", "a 64x64 RGB image needs 12288 bytes of pixels, got 5"),
        })
        {
            using var set = Load(Extension(name, code));
            var request = Request(5);
            var ex = await Assert.ThrowsAsync<ExtensionException>(() => GenerateAsync(request, set));
            Assert.Equal((name, hook), (ex.Extension, ex.Hook));
            Assert.Contains(message, ex.Message);
            Assert.False(Directory.Exists(request.OutputDir) && Directory.EnumerateFileSystemEntries(request.OutputDir).Any(), "a file was written");
            Assert.Equal(baseDigest, await Fixture.Bridge.GetWeightsDigestAsync());
        }
        // The host carries on.
        Assert.Single(await GenerateAsync(Request(5), null));
    }

    [Fact]
    public async Task CancellingWhileAnAfterCfgHookWaitsCancelsTheJobCleanly()
    {
        using var set = Load(Extension("Waits", """
            public sealed class Waits : ILoraBridgeExtension
            {
                public static Action? Reached;
                public string Name => "Waits";
                public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct)
                {
                    if (step.Step != 2) return;
                    Reached!();
                    await Task.Delay(Timeout.Infinite, ct);
                }
            }
            """));
        using var cts = new CancellationTokenSource();
        set.Extensions[0].GetType().GetField("Reached")!.SetValue(null, (Action)(() => cts.CancelAfter(200)));
        var baseDigest = await BaseDigestAsync();
        var request = Request(9);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => GenerateAsync(request, set, cts.Token));
        Assert.False(Directory.Exists(request.OutputDir) && Directory.EnumerateFileSystemEntries(request.OutputDir).Any());
        Assert.Equal(baseDigest, await Fixture.Bridge.GetWeightsDigestAsync());
        Assert.Single(await GenerateAsync(Request(9), null));
    }

    [Fact]
    public async Task CancellingWhileAnAfterCfgHookRunsPythonInterruptsItAndCancelsTheJob()
    {
        using var set = Load(Extension("Spins", """
            public sealed class Spins : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public static Action? Reached;
                public string Name => "Spins";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("spin_forever");
                public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct)
                {
                    if (step.Step != 2) return;
                    Reached!();
                    await _py.CallAsync("spin", 600.0);
                }
            }
            """, ("spin_forever", "import time\n\ndef spin(seconds):\n    end = time.monotonic() + seconds\n    while time.monotonic() < end:\n        pass\n")));
        using var cts = new CancellationTokenSource();
        set.Extensions[0].GetType().GetField("Reached")!.SetValue(null, (Action)(() => cts.CancelAfter(300)));
        var baseDigest = await BaseDigestAsync();
        var request = Request(10);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => GenerateAsync(request, set, cts.Token));
        Assert.False(Directory.Exists(request.OutputDir) && Directory.EnumerateFileSystemEntries(request.OutputDir).Any());
        Assert.Equal(baseDigest, await Fixture.Bridge.GetWeightsDigestAsync());
        Assert.Single(await GenerateAsync(Request(10), null));
    }

    [Fact]
    public async Task BadPythonInExtensionsGivesClearErrorsNamingTheExtension()
    {
        var cases = new (string Name, string Cs, (string, string)[] Py, string Type, string Text)[]
        {
            ("Syntax", """
                public sealed class Syntax : ILoraBridgeExtension
                {
                    private IPythonModule _py = null!;
                    public string Name => "Syntax";
                    public void Initialize(IExtensionHost host) => _py = host.ImportPython("broken_syntax");
                    public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) => await _py.CallAsync("f", step.Denoised);
                }
                """, [("broken_syntax", "def f(t:\n    return t\n")], "SyntaxError", "broken_syntax.py"),
            ("Missing", """
                public sealed class Missing : ILoraBridgeExtension
                {
                    private IPythonModule _py = null!;
                    public string Name => "Missing";
                    public void Initialize(IExtensionHost host) => _py = host.ImportPython("has_no_g");
                    public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) => await _py.CallAsync("g", step.Denoised);
                }
                """, [("has_no_g", "def f(t):\n    return t\n")], "AttributeError", "has no function 'g'"),
            ("Stale", """
                public sealed class Stale : ILoraBridgeExtension
                {
                    private IPythonModule _py = null!;
                    private CfgStep? _first;
                    public string Name => "Stale";
                    public void Initialize(IExtensionHost host) => _py = host.ImportPython("stale_use");
                    public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct)
                    {
                        _first ??= step;
                        await _py.CallAsync("total", _first.Denoised);
                    }
                }
                """, [("stale_use", "def total(t):\n    return float(t.sum())\n")], "LookupError", "(lent to the after-CFG hook of step 1 of 4) was used after its step"),
        };
        foreach (var (name, cs, py, type, text) in cases)
        {
            using var set = Load(Extension(name, cs, py));
            var request = Request(3);
            var ex = await Assert.ThrowsAsync<ExtensionException>(() => GenerateAsync(request, set));
            Assert.Equal(name, ex.Extension);
            var inner = Assert.IsType<ExtensionPythonException>(ex.InnerException);
            Assert.Equal((name, type), (inner.Extension, inner.PythonType));
            Assert.Contains(text, inner.Message);
            Assert.StartsWith($"extension '{name}' failed in AfterCfgAsync: extension '{name}': ", ex.Message);
            Assert.Contains("Traceback", inner.PythonTraceback);
            Assert.False(Directory.Exists(request.OutputDir) && Directory.EnumerateFileSystemEntries(request.OutputDir).Any());
        }
        Assert.Single(await GenerateAsync(Request(3), null));
    }
}
