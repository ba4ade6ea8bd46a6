using System.Globalization;

// CFG rescale (φ) from "Common Diffusion Noise Schedules and Sample Steps are Flawed" (Lin et al., 2023, §3.4), as
// A1111's CFG-rescale extensions apply it to the denoised prediction: after each CFG combine the result is scaled so
// its standard deviation matches the positive prediction's, then blended with the unscaled result by φ. It counters
// the over-exposure high CFG scales give. The work is done in python/cfg_rescale.py on the tensors themselves.
// Setting: LoraBridge:Extensions:CfgRescale:Multiplier (φ, 0–1; env LORABRIDGE_EXTENSIONS__CFGRESCALE__MULTIPLIER);
// unset does nothing. The infotext gets "CFG Rescale phi" when φ > 0.
public sealed class CfgRescale : ILoraBridgeExtension
{
    private IPythonModule _python = null!;
    private double? _phi;

    public string Name => "CfgRescale";

    public string Description => "Rescales the CFG output toward the positive prediction's spread (CfgRescale:Multiplier = φ)";

    public void Initialize(IExtensionHost host)
    {
        _python = host.ImportPython("cfg_rescale");
        var text = host.GetSetting("CfgRescale:Multiplier");
        if (string.IsNullOrWhiteSpace(text)) return;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var phi) || !double.IsFinite(phi) || phi is < 0 or > 1)
            throw new ArgumentException($"CfgRescale:Multiplier must be a number from 0 to 1, got \"{text}\"");
        _phi = phi;
    }

    public async ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct)
    {
        if (_phi is { } phi) await _python.CallAsync("rescale", step.Denoised, step.Cond, phi);
    }

    public ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct)
    {
        if (_phi is { } phi and > 0) image.Parameters["CFG Rescale phi"] = phi.ToString(CultureInfo.InvariantCulture);
        return ValueTask.CompletedTask;
    }
}
