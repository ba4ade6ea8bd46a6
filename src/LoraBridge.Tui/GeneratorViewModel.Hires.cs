using System.Globalization;
using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Tui;

// Checkpoint choice, hires fix settings (A1111's "Hires. fix" box: upscaler, factor, second-pass steps and denoising
// strength) and the live preview method.
public sealed partial class GeneratorViewModel
{
    /// <summary>The checkpoint chosen in the form (a name from the model folders or a built-in demo); empty: the configured one.</summary>
    public string Checkpoint { get; set; } = "";

    /// <summary>The checkpoint of the job that runs or ran last (<see cref="Checkpoint"/> when it started).</summary>
    public string JobCheckpoint { get; private set; } = "";

    /// <summary>The hires choice that turns the fix off.</summary>
    public const string HiresOff = "Off";

    /// <summary>Hires choices: off, then A1111's latent upscale modes (<c>LATENT_UPSCALE_MODES</c> in python/lorabridge/hires.py).</summary>
    public static readonly IReadOnlyList<string> HiresUpscalers =
        [HiresOff, "Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)"];

    /// <summary>
    /// The hires choices offered: <see cref="HiresUpscalers"/> by default; with <see cref="UseImageUpscalers"/>, the
    /// image upscalers follow the latent modes as in A1111's "Upscaler" dropdown.
    /// </summary>
    public IReadOnlyList<string> HiresChoices { get; private set; } = HiresUpscalers;

    /// <summary>Adds image upscaler names (built-ins and ESRGAN files, <see cref="UpscalerNames.List"/>) after the latent modes.</summary>
    public void UseImageUpscalers(IEnumerable<string> names) =>
        HiresChoices = [.. HiresUpscalers.Concat(names).Distinct(StringComparer.Ordinal)];

    /// <summary>Hires upscaler; <see cref="HiresOff"/> for no hires pass.</summary>
    public string HiresUpscaler { get; set; } = HiresOff;
    /// <summary>Hires upscale factor field.</summary>
    public string HiresScaleText { get; set; } = "2";
    /// <summary>Hires steps field (0: as many as the first pass).</summary>
    public string HiresStepsText { get; set; } = "0";
    /// <summary>Hires denoising strength field.</summary>
    public string HiresDenoiseText { get; set; } = "0.7";

    /// <summary>The live preview choice that uses TAESD when the model family's decoder file is found.</summary>
    public const string PreviewAuto = "Auto";

    /// <summary>
    /// The default live preview method: Approx cheap, as cheap as a preview can be. TAESD (also through Auto) costs
    /// 2–2.5 demo-model steps per preview on a CPU (preview benchmark), so it is the user's choice, not a default.
    /// </summary>
    public const string PreviewDefault = "Approx cheap";

    /// <summary>A1111's "Live preview method" choices this UI offers, in the order of <see cref="PreviewMethod"/>'s names.</summary>
    public static readonly IReadOnlyList<string> PreviewMethods = [PreviewAuto, "Approx cheap", "TAESD"];

    /// <summary>Live preview method, one of <see cref="PreviewMethods"/>.</summary>
    public string LivePreviewMethod { get; set; } = PreviewDefault;

    /// <summary>The live preview method of the job that runs or ran last (<see cref="LivePreviewMethod"/> when it started).</summary>
    public PreviewMethod JobPreviewMethod { get; private set; } = PreviewMethod.ApproxCheap;

    /// <summary>The method a choice names (case-insensitive); null when it is none of <see cref="PreviewMethods"/>.</summary>
    public static PreviewMethod? ParsePreviewMethod(string text) =>
        text.Trim().ToUpperInvariant() switch
        {
            "AUTO" => PreviewMethod.Auto,
            "APPROX CHEAP" => PreviewMethod.ApproxCheap,
            "TAESD" => PreviewMethod.Taesd,
            _ => null,
        };

    /// <summary>The hires settings of the form, or null when the fix is off; problems are added to <paramref name="errors"/>, naming the field.</summary>
    private HiresSettings? HiresFromForm(List<string> errors)
    {
        var upscaler = HiresChoices.FirstOrDefault(u => string.Equals(u, HiresUpscaler.Trim(), StringComparison.OrdinalIgnoreCase));
        if (upscaler is null)
        {
            errors.Add($"hires: '{HiresUpscaler}' is not one of {string.Join(", ", HiresChoices)}");
            return null;
        }
        if (upscaler == HiresOff) return null;
        int count = errors.Count;
        // A1111's slider ranges: upscale by 1-4, steps 0-150, denoising strength 0-1.
        if (!double.TryParse(HiresScaleText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) || !(scale >= 1 && scale <= 4))
            errors.Add($"hires scale: '{HiresScaleText}' is not a number from 1 to 4");
        if (!int.TryParse(HiresStepsText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var steps) || steps > 150)
            errors.Add($"hires steps: '{HiresStepsText}' is not a whole number from 0 to 150 (0: the first pass's steps)");
        if (!double.TryParse(HiresDenoiseText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var denoise) || !(denoise >= 0 && denoise <= 1))
            errors.Add($"hires denoising strength: '{HiresDenoiseText}' is not a number from 0 to 1");
        if (errors.Count > count) return null;
        return new HiresSettings { Upscaler = upscaler, Scale = scale, Steps = steps, DenoisingStrength = denoise };
    }
}
