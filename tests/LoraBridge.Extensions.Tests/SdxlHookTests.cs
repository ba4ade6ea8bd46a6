using LoraBridge.Engine;
using SkiaSharp;

namespace LoraBridge.Extensions.Tests;

/// <summary>
/// Hooks on the built-in SDXL demo model (<c>lorabridge-demo-xl</c>) through the real embedded Python: what a
/// before-model-call hook sees of SDXL's conditioning (cross-attention rows with the pooled/size vector appended), that
/// an edit of it takes effect, and LatentPreview picking the SDXL TAESD file.
/// </summary>
[Collection("python")]
public sealed class SdxlHookTests(PythonHostFixture f) : HookTestBase(f, "lb-ext-xl")
{
    private const int XlSize = 128; // the demo's default: a 16x16 latent, which its UNet halves twice

    private GenerationRequest XlRequest(long seed) => Request(seed, "a lighthouse") with { Width = XlSize, Height = XlSize };

    // The demo's cross-attention width: its two text towers' widths side by side (python/lorabridge/demo_xl.py).
    private const string ConditioningPy = """
        import torch
        from lorabridge import demo_xl

        CONTEXT = demo_xl.TE1_WIDTH + demo_xl.TE2_WIDTH

        def look(x: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor) -> list:
            vector = cond[:, :, CONTEXT:]
            return [
                list(x.shape), list(cond.shape), list(uncond.shape), CONTEXT,
                # The vector is the same on every token row of each conditioning (the model reads row 0's) ...
                bool((vector == vector[:, :1]).all()) and bool((uncond[:, :, CONTEXT:] == uncond[:, :1, CONTEXT:]).all()),
                # ... and is there: the prompt's pooled embedding and the size embeddings are not zero.
                float(vector[:, 0].abs().sum()) > 0,
            ]

        def drop_vector(cond: torch.Tensor, uncond: torch.Tensor) -> None:
            cond[:, :, CONTEXT:].zero_()
            uncond[:, :, CONTEXT:].zero_()
        """;

    [Fact]
    public async Task BeforeModelCallSeesTheSdxlConditioningAndAnEditOfItsVectorTakesEffect()
    {
        var xl = Fixture.XlWorkspace;
        var plain = Assert.Single(await GenerateAsync(XlRequest(4), null, workspace: xl));

        using var look = Load(Extension("XlLook", """
            public sealed class XlLook : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public static List<string> Seen = new();
                public string Name => "XlLook";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("xl_conditioning");
                public async ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct)
                {
                    var r = (List<object?>)(await _py.CallAsync("look", step.X, step.Cond, step.Uncond))!;
                    string Shape(object? o) => string.Join("x", (List<object?>)o!);
                    Seen.Add($"{step.Step}/{step.TotalSteps} x {Shape(r[0])} cond {Shape(r[1])} uncond {Shape(r[2])} ctx {r[3]} same {r[4]} nonzero {r[5]}");
                }
            }
            """, ("xl_conditioning", ConditioningPy)));
        var looked = Assert.Single(await GenerateAsync(XlRequest(4), look, workspace: xl));
        // 4 calls on the 16x16 latent; rows of 77 tokens, 64 cross-attention values + 1568 (32 pooled + 6 x 256 size
        // embeddings) per token.
        Assert.Equal(Enumerable.Range(1, 4).Select(i => $"{i}/4 x 1x4x16x16 cond 1x77x1632 uncond 1x77x1632 ctx 64 same True nonzero True"), Seen(look));
        // Looking changes nothing: the bytes of the run without the hook.
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(looked.Path));

        using var drop = Load(Extension("XlDrop", """
            public sealed class XlDrop : ILoraBridgeExtension
            {
                private IPythonModule _py = null!;
                public string Name => "XlDrop";
                public void Initialize(IExtensionHost host) => _py = host.ImportPython("xl_drop");
                public async ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct) =>
                    await _py.CallAsync("drop_vector", step.Cond, step.Uncond);
            }
            """, ("xl_drop", ConditioningPy)));
        var dropped = Assert.Single(await GenerateAsync(XlRequest(4), drop, workspace: xl));
        var again = Assert.Single(await GenerateAsync(XlRequest(4), drop, workspace: xl));
        Assert.Equal(File.ReadAllBytes(dropped.Path), File.ReadAllBytes(again.Path));
        Assert.True(MeanDiff(Pixels(dropped.Path), Pixels(plain.Path)) > 1, "zeroing the pooled/size vector changed nothing");
        // The conditionings cached for later jobs were not touched: the same seed without the hook is the original.
        var after = Assert.Single(await GenerateAsync(XlRequest(4), null, workspace: xl));
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(after.Path));
    }

    [Fact]
    public async Task LatentPreviewUsesTheSdxlTaesdFileOnTheSdxlModel()
    {
        var webui = Directory.CreateDirectory(Path.Combine(Dir, "webui")).FullName;
        var vaeApprox = Directory.CreateDirectory(Path.Combine(webui, "models", "VAE-approx")).FullName;
        var modelsDirs = UpscalerLocations.ModelsDirs(new WorkspaceSettings { WebUiDir = webui, DataDir = Path.Combine(Dir, "lorabridge-data") });
        using var set = Load(Host(new Dictionary<string, string> { ["LatentPreview:Dir"] = "previews" }, modelsDirs), Samples);

        async Task<List<(int, int)>> PreviewSizesAsync()
        {
            await GenerateAsync(XlRequest(5), set, workspace: Fixture.XlWorkspace);
            var job = Directory.GetDirectories(Path.Combine(Dir, "data", "previews"), "job-*").Order(StringComparer.Ordinal).Last();
            return Directory.GetFiles(job).Order(StringComparer.Ordinal).Select(p =>
            {
                using var bitmap = SKBitmap.Decode(p);
                return (bitmap.Width, bitmap.Height);
            }).ToList();
        }

        // The SD1 decoder does not fit SDXL latents: cheap previews, one pixel per latent pixel.
        await Host().RunPythonAsync("""
            import torch
            from lorabridge.checkpoint import save_safetensors
            from lorabridge.taesd import TaesdDecoder

            torch.manual_seed(3)
            save_safetensors(dir + "/taesd_decoder.safetensors", TaesdDecoder().state_dict())
            """, new Dictionary<string, string> { ["dir"] = vaeApprox });
        Assert.Equal(Enumerable.Repeat((16, 16), 4), await PreviewSizesAsync());
        await Host().RunPythonAsync("""
            import torch
            from lorabridge.taesd import TaesdDecoder

            torch.manual_seed(4)
            torch.save(TaesdDecoder().state_dict(), dir + "/taesdxl_decoder.pth")
            """, new Dictionary<string, string> { ["dir"] = vaeApprox });
        Assert.Equal(Enumerable.Repeat((XlSize, XlSize), 4), await PreviewSizesAsync());
    }
}
