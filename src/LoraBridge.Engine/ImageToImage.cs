using System.Globalization;

namespace LoraBridge.Engine;

/// <summary>img2img settings of a job (A1111's <c>StableDiffusionProcessingImg2Img</c>).</summary>
public sealed record Img2ImgSettings
{
    /// <summary>The init picture; it is read, never modified.</summary>
    public required string InitImage { get; init; }
    /// <summary>How much of the schedule runs from the noised picture: 0 keeps it, 1 ignores it (A1111 default 0.75).</summary>
    public double DenoisingStrength { get; init; } = 0.75;
    /// <summary>"Just resize", "Crop and resize", "Resize and fill" or "Just resize (latent upscale)".</summary>
    public string ResizeMode { get; init; } = "Just resize";
    /// <summary>A1111's img2img_fix_steps option: run exactly the requested steps (longer schedule) instead of strength × steps.</summary>
    public bool FixSteps { get; init; }
    /// <summary>Upscaler used when the picture must grow (A1111's "Upscaler for img2img"); null: LANCZOS.</summary>
    public string? Upscaler { get; init; }
}

/// <summary>Hires fix settings of a txt2img job (A1111's <c>enable_hr</c> fields).</summary>
public sealed record HiresSettings
{
    /// <summary>A latent mode ("Latent", "Latent (nearest-exact)", …) or an image upscaler name.</summary>
    public string Upscaler { get; init; } = "Latent";
    /// <summary>Upscale factor, used when <see cref="ResizeX"/> and <see cref="ResizeY"/> are both 0.</summary>
    public double Scale { get; init; } = 2.0;
    /// <summary>Target width, 0 to follow the aspect ratio.</summary>
    public int ResizeX { get; init; }
    /// <summary>Target height, 0 to follow the aspect ratio.</summary>
    public int ResizeY { get; init; }
    /// <summary>Second-pass steps; 0 means the first pass's steps.</summary>
    public int Steps { get; init; }
    /// <summary>Denoising strength of the second pass (A1111 default 0.7).</summary>
    public double DenoisingStrength { get; init; } = 0.7;
    /// <summary>Second-pass prompt; empty means the prompt.</summary>
    public string Prompt { get; init; } = "";
    /// <summary>Second-pass negative prompt; empty means the negative prompt.</summary>
    public string NegativePrompt { get; init; } = "";
    /// <summary>Second-pass sampler; null means the first pass's.</summary>
    public string? Sampler { get; init; }
    /// <summary>Second-pass schedule type; null means the first pass's.</summary>
    public string? Schedule { get; init; }
}

/// <summary>What the hires pass of one batch needs from the backend.</summary>
/// <param name="Sampler">Sampler name.</param>
/// <param name="Schedule">Schedule type.</param>
/// <param name="Steps">Steps (hires steps or the first pass's).</param>
/// <param name="DenoisingStrength">Strength.</param>
/// <param name="Scale">Factor.</param>
/// <param name="ResizeX">Target width or 0.</param>
/// <param name="ResizeY">Target height or 0.</param>
/// <param name="Upscaler">Latent mode or image upscaler.</param>
public sealed record HiresPassSettings(string Sampler, string Schedule, int Steps, double DenoisingStrength, double Scale, int ResizeX, int ResizeY, string Upscaler);

/// <summary>A backend that can also start img2img runs and hires passes.</summary>
public interface IImageGenerationBackend
{
    /// <summary>Encodes the init picture and starts sampling from it at the strength's noise level.</summary>
    Task<SamplingHandle> StartImg2ImgAsync(SamplingSettings settings, Img2ImgSettings img2img, CancellationToken ct);

    /// <summary>Upscales a finished first pass and starts the second pass (fresh noise from the same seeds).</summary>
    Task<SamplingHandle> StartHiresAsync(SamplingHandle firstPass, HiresPassSettings pass, CancellationToken ct);
}

/// <summary>A1111's hires and img2img rules the engine needs without the backend: sizes, checks, infotext.</summary>
public static class HiresRules
{
    /// <summary>A1111's latent upscale modes.</summary>
    public static readonly IReadOnlyList<string> LatentModes =
        ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)"];

    /// <summary>A1111's resize modes, by index.</summary>
    public static readonly IReadOnlyList<string> ResizeModes = ["Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)"];

    /// <summary>The second pass's size (A1111 <c>calculate_target_resolution</c>: truncation, no rounding to 8).</summary>
    public static (int Width, int Height) Target(int width, int height, HiresSettings hr)
    {
        if (hr.ResizeX == 0 && hr.ResizeY == 0) return ((int)(width * hr.Scale), (int)(height * hr.Scale));
        if (hr.ResizeY == 0) return (hr.ResizeX, hr.ResizeX * height / width);
        if (hr.ResizeX == 0) return (hr.ResizeY * width / height, hr.ResizeY);
        // Both given: fill the box and crop the overflow in latent space; the picture ends at the box's size.
        return ((double)width / height < (double)hr.ResizeX / hr.ResizeY)
            ? (hr.ResizeX, hr.ResizeX * height / width)
            : (hr.ResizeY * width / height, hr.ResizeY);
    }

    /// <summary>The size of the hires picture written (the box when both resize sizes are given).</summary>
    public static (int Width, int Height) OutputSize(int width, int height, HiresSettings hr)
    {
        var (w, h) = Target(width, height, hr);
        if (hr.ResizeX != 0 && hr.ResizeY != 0)
        {
            int tx = (w - hr.ResizeX) / 8, ty = (h - hr.ResizeY) / 8;
            return ((w / 8 - tx) * 8, (h / 8 - ty) * 8);
        }
        return (w / 8 * 8, h / 8 * 8);
    }

    /// <summary>The second pass's steps: hires steps, or the first pass's.</summary>
    public static int Steps(GenerationRequest request, HiresSettings hr) => hr.Steps > 0 ? hr.Steps : request.Steps;

    /// <summary>Checks the img2img and hires settings of a request.</summary>
    /// <exception cref="ArgumentException">A value out of range, naming it.</exception>
    public static void Validate(GenerationRequest r)
    {
        if (r.Img2Img is { } i)
        {
            if (i.DenoisingStrength is < 0 or > 1 || double.IsNaN(i.DenoisingStrength))
                throw new ArgumentException($"denoising strength must be between 0 and 1, got {i.DenoisingStrength.ToString(CultureInfo.InvariantCulture)}");
            if (!ResizeModes.Contains(i.ResizeMode, StringComparer.OrdinalIgnoreCase) && !(int.TryParse(i.ResizeMode, out int m) && m is >= 0 and <= 3))
                throw new ArgumentException($"unknown resize mode '{i.ResizeMode}'; expected one of {string.Join(", ", ResizeModes)}");
            if (!File.Exists(i.InitImage)) throw new ArgumentException($"init image not found: {i.InitImage}");
            if (r.Hires is not null) throw new ArgumentException("hires fix is a txt2img setting; img2img takes --size for the output size");
        }
        if (r.Hires is { } hr)
        {
            if (hr.DenoisingStrength is < 0 or > 1 || double.IsNaN(hr.DenoisingStrength))
                throw new ArgumentException($"hires denoising strength must be between 0 and 1, got {hr.DenoisingStrength.ToString(CultureInfo.InvariantCulture)}");
            if (hr.Steps < 0) throw new ArgumentException($"hires steps must be 0 (same as steps) or more, got {hr.Steps}");
            if (hr.ResizeX < 0 || hr.ResizeY < 0) throw new ArgumentException($"hires resize must not be negative, got {hr.ResizeX}x{hr.ResizeY}");
            if (hr.ResizeX == 0 && hr.ResizeY == 0 && !(hr.Scale > 0)) throw new ArgumentException($"hires scale must be positive, got {hr.Scale.ToString(CultureInfo.InvariantCulture)}");
            var (w, h) = Target(r.Width, r.Height, hr);
            if (w < 8 || h < 8) throw new ArgumentException($"hires target {w}x{h} is smaller than 8 pixels");
            if (string.IsNullOrWhiteSpace(hr.Upscaler)) throw new ArgumentException("hires upscaler must not be empty");
        }
    }

    /// <summary>
    /// The hires entries A1111's txt2img <c>init</c> adds, in its order: Hires sampler (when it differs), Hires prompt /
    /// negative prompt (when they differ), Hires schedule type (from the pass), Hires upscale or resize, Hires steps, Hires upscaler.
    /// "Denoising strength" is written earlier, after "Model", as A1111's fixed key order puts it.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, string>> Infotext(GenerationRequest r, HiresSettings hr, SamplingHandle? hiresPass)
    {
        if (hr.Sampler is { } s && s != r.Sampler) yield return new("Hires sampler", s);
        if (hr.Prompt.Length > 0 && hr.Prompt != r.Prompt) yield return new("Hires prompt", hr.Prompt);
        if (hr.NegativePrompt.Length > 0 && hr.NegativePrompt != r.NegativePrompt) yield return new("Hires negative prompt", hr.NegativePrompt);
        if (hiresPass is not null)
            foreach (var kv in hiresPass.InfotextParams.Where(kv => kv.Key == "Hires schedule type")) yield return kv;
        if (hr.ResizeX == 0 && hr.ResizeY == 0) yield return new("Hires upscale", LoraBridge.Engine.Infotext.FormatNumber(hr.Scale));
        else yield return new("Hires resize", $"{hr.ResizeX}x{hr.ResizeY}");
        if (hr.Steps > 0) yield return new("Hires steps", hr.Steps.ToString(CultureInfo.InvariantCulture));
        yield return new("Hires upscaler", hr.Upscaler);
    }

    /// <summary>"Denoising strength" of an img2img or hires job, or nothing.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Denoising(GenerationRequest r)
    {
        double? strength = r.Img2Img?.DenoisingStrength ?? r.Hires?.DenoisingStrength;
        if (strength is { } d) yield return new("Denoising strength", LoraBridge.Engine.Infotext.FormatNumber(d));
    }
}
