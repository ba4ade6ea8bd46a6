using LoraBridge.Python;

namespace LoraBridge.Engine;

// img2img and hires passes over the bridge (python/lorabridge/generation_img.py).
public sealed partial class PythonGenerationBackend : IImageGenerationBackend
{
    /// <summary>Where image upscalers are looked for, and A1111's tile settings.</summary>
    public UpscalerFolders Upscalers { get; init; } = new([]);

    /// <inheritdoc />
    public async Task<SamplingHandle> StartImg2ImgAsync(SamplingSettings s, Img2ImgSettings img2img, CancellationToken ct)
    {
        var input = new Img2ImgInput(Path.GetFullPath(img2img.InitImage), img2img.DenoisingStrength, img2img.ResizeMode, img2img.FixSteps, img2img.Upscaler);
        var run = await bridge.StartImg2ImgAsync(s.Sampler, s.Schedule, s.Steps, s.Seed, s.BatchSize, s.Width, s.Height, s.RandnSource,
            s.EtaNoiseSeedDelta, input, Upscalers, ct).ConfigureAwait(false);
        return new SamplingHandle(run.Handle, run.TotalCalls, run.InfotextParams);
    }

    /// <inheritdoc />
    public async Task<SamplingHandle> StartHiresAsync(SamplingHandle firstPass, HiresPassSettings p, CancellationToken ct)
    {
        var run = await bridge.StartHiresAsync(firstPass.Id, new HiresPass(p.Sampler, p.Schedule, p.Steps, p.DenoisingStrength, p.Scale,
            p.ResizeX, p.ResizeY, p.Upscaler), Upscalers, ct).ConfigureAwait(false);
        return new SamplingHandle(run.Handle, run.TotalCalls, run.InfotextParams);
    }
}
