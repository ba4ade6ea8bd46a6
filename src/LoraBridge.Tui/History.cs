using System.Globalization;
using LoraBridge.Engine;

namespace LoraBridge.Tui;

/// <summary>One image of the history with the parameters read from its PNG infotext.</summary>
/// <param name="Path">The PNG file.</param>
/// <param name="Written">Last write time (the list is newest first).</param>
/// <param name="Info">Its parsed <c>parameters</c> text.</param>
public sealed record HistoryItem(string Path, DateTime Written, Infotext Info)
{
    /// <summary>The list row: file name, seed and the prompt's start.</summary>
    public override string ToString() =>
        $"{System.IO.Path.GetFileName(Path)}  seed {Info["Seed"] ?? "?"}  {Info.Prompt.Replace('\n', ' ')}";

    /// <summary>Every parameter, one per line, prompt and negative prompt first.</summary>
    public string Details =>
        $"{Path}\nPrompt: {Info.Prompt}\nNegative prompt: {Info.NegativePrompt}\n" +
        string.Join("\n", Info.Parameters.Select(p => $"{p.Key}: {p.Value}"));
}

/// <summary>
/// The generation history, read back from the output folders' PNG infotext (so images written by <c>generate</c> and
/// <c>batch</c>, or in an earlier session, are listed too).
/// </summary>
public static class History
{
    /// <summary>
    /// Lists the newest <paramref name="limit"/> PNG files under <paramref name="root"/> (recursively) that carry a
    /// <c>parameters</c> text; unreadable or foreign PNGs are skipped, never modified.
    /// </summary>
    public static IReadOnlyList<HistoryItem> Scan(string root, int limit = 200)
    {
        if (!Directory.Exists(root)) return [];
        var files = new DirectoryInfo(root).EnumerateFiles("*.png", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, MaxRecursionDepth = 4 })
            .OrderByDescending(f => f.LastWriteTimeUtc).ThenByDescending(f => f.Name, StringComparer.Ordinal);
        var items = new List<HistoryItem>();
        foreach (var f in files)
        {
            if (items.Count >= limit) break;
            try
            {
                if (PngText.Read(f.FullName).TryGetValue("parameters", out var text))
                    items.Add(new HistoryItem(f.FullName, f.LastWriteTimeUtc, Infotext.Parse(text)));
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                // Not a readable PNG (being written, damaged): not part of the history.
            }
        }
        return items;
    }

    /// <summary>
    /// A1111's "send to txt2img": the prompt and every setting the infotext names; settings it does not name keep
    /// their current value (A1111 leaves those fields alone too).
    /// </summary>
    public static void Reuse(GeneratorViewModel vm, Infotext info)
    {
        vm.Prompt = info.Prompt;
        vm.NegativePrompt = info.NegativePrompt;
        if (info["Steps"] is { } steps) vm.StepsText = steps;
        if (info["CFG scale"] is { } cfg) vm.CfgText = cfg;
        if (info["Seed"] is { } seed) vm.SeedText = seed;
        if (info["Size"] is { } size) vm.SizeText = size;
        if (info["Sampler"] is { } sampler) vm.Sampler = sampler;
        vm.Schedule = info["Schedule type"] ?? "Automatic";
        vm.ClipSkipText = info["Clip skip"] ?? "1";
        // A1111 writes the hires entries only when the fix ran; without them the fix is off.
        vm.HiresUpscaler = info["Hires upscaler"] ?? (info["Hires upscale"] is null ? GeneratorViewModel.HiresOff : "Latent");
        if (info["Hires upscale"] is { } hrScale) vm.HiresScaleText = hrScale;
        vm.HiresStepsText = info["Hires steps"] ?? "0";
        if (info["Denoising strength"] is { } denoise) vm.HiresDenoiseText = denoise;
        if (info["Batch size"] is { } batch && int.TryParse(batch, NumberStyles.None, CultureInfo.InvariantCulture, out _)) vm.BatchSizeText = batch;
    }
}
