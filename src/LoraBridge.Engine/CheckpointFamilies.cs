using LoraBridge.Models;
using LoraBridge.Python;

namespace LoraBridge.Engine;

/// <summary>Decides a checkpoint's family for generation, and passes the precision settings to Python before a load.</summary>
public static class CheckpointFamilies
{
    /// <summary>The precisions A1111's <c>--precision</c> accepts.</summary>
    public static readonly IReadOnlyList<string> Precisions = ["full", "autocast"];

    /// <summary>Checks a precision value; null stays null (the runtime's default, autocast).</summary>
    /// <param name="precision">The value.</param>
    /// <param name="source">Where it came from, for the message (an option or a setting key).</param>
    /// <exception cref="ArgumentException">Not one of <see cref="Precisions"/>.</exception>
    public static string? ValidatePrecision(string? precision, string source = "precision") =>
        precision is null || Precisions.Contains(precision)
            ? precision
            : throw new ArgumentException($"{source} must be {string.Join(" or ", Precisions)}, got '{precision}'");

    /// <summary>
    /// Sends the precision settings to Python when any is set, before the checkpoint loads (a model loaded with other
    /// settings is reloaded by the next load), and the LoRA cache bound when it is set. Nothing is sent for defaults.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown precision or a negative LoRA cache size.</exception>
    public static async Task ApplyPrecisionAsync(PythonBridge bridge, WorkspaceSettings settings, CancellationToken ct)
    {
        if (settings.LoraCacheMiB is { } mib)
        {
            if (!(mib >= 0)) throw new ArgumentException($"LoraBridge:LoraCacheMiB must be 0 or more, got {mib}");
            await bridge.SetLoraCacheAsync(mib, ct).ConfigureAwait(false);
        }
        var precision = ValidatePrecision(settings.Precision, "LoraBridge:Precision");
        if (precision is null && !settings.NoHalfVae) return;
        await bridge.SetPrecisionAsync(precision ?? "autocast", settings.NoHalfVae, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The family of <paramref name="path"/>: from its keys in C# (safetensors header, torch zip key names), else
    /// from Python's reading of the file (legacy pickles). A recognised family LoraBridge does not run (SDXL refiner,
    /// inpainting, SD 2.x) is refused here, naming what was recognised.
    /// </summary>
    /// <exception cref="ModelFileException">An unsupported family, or a header that cannot be read.</exception>
    public static Task<BaseFamily> ResolveAsync(PythonBridge bridge, string path, CancellationToken ct) =>
        ResolveAsync(bridge, path, CheckpointKind.Detect(path), ct);

    /// <summary>As <see cref="ResolveAsync(PythonBridge, string, CancellationToken)"/>, from keys already read in C# (<see cref="CheckpointKind.Detect"/>).</summary>
    /// <exception cref="ModelFileException">An unsupported family.</exception>
    public static async Task<BaseFamily> ResolveAsync(PythonBridge bridge, string path, CheckpointKind kind, CancellationToken ct)
    {
        if (kind.Family == BaseFamily.Unknown)
        {
            var py = await bridge.GetCheckpointFamilyAsync(path, ct).ConfigureAwait(false);
            kind = new CheckpointKind(FromPython(py.Family), py.Supported, py.Detail);
        }
        if (!kind.Supported && kind.Family != BaseFamily.Unknown) throw new ModelFileException(path, kind.Detail);
        return kind.Family;
    }

    /// <summary>Maps the Python side's family names ("sd1", "sdxl", "sd2") to <see cref="BaseFamily"/>.</summary>
    public static BaseFamily FromPython(string family) => family switch
    {
        "sd1" => BaseFamily.SD1,
        "sd2" => BaseFamily.SD2,
        "sdxl" => BaseFamily.SDXL,
        _ => BaseFamily.Unknown,
    };
}
