using System.Globalization;
using System.Text;

namespace LoraBridge.Prompting;

/// <summary>
/// Preset tables of the sd-webui-lora-block-weight extension (LBW): weight presets (<c>NAME:v,v,...</c> lines) and
/// elemental presets (<c>NAME:BLOCKS:ELEMENTS:VALUE,...</c> blocks separated by a blank line). The defaults are LBW's
/// own; user files (same format, <c>lbwpresets.txt</c> / <c>elempresets.txt</c> in the data folder) add to them.
/// </summary>
public sealed class LbwPresets
{
    /// <summary>LBW's <c>DEF_WEIGHT_PRESET</c> (17 values each, except FLUXALL's 61).</summary>
    public static readonly string DefaultWeightText = string.Join('\n',
        "NONE:0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
        "ALL:1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
        "INS:1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0",
        "IND:1,0,0,0,1,1,1,0,0,0,0,0,0,0,0,0,0",
        "INALL:1,1,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0",
        "MIDD:1,0,0,0,1,1,1,1,1,1,1,1,0,0,0,0,0",
        "OUTD:1,0,0,0,0,0,0,0,1,1,1,1,0,0,0,0,0",
        "OUTS:1,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1",
        "OUTALL:1,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1",
        "ALL0.5:0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5",
        "FLUXALL:" + string.Join(',', Enumerable.Repeat("1", 61)));

    /// <summary>LBW's default elemental presets.</summary>
    public const string DefaultElementalText =
        "ATTNDEEPON:IN05-OUT05:attn:1\n\nATTNDEEPOFF:IN05-OUT05:attn:0\n\nPROJDEEPOFF:IN05-OUT05:proj:0\n\nXYZ:::1";

    /// <summary>Value counts LBW accepts: 12 (SDXL LoRA), 17 (SD1 LoRA), 20 (SDXL full), 26 (all blocks), 61 (FLUX).</summary>
    public static readonly IReadOnlyList<int> AllowedCounts = [12, 17, 20, 26, 61];

    /// <summary>The defaults alone.</summary>
    public static LbwPresets Default { get; } = Create(null, null);

    /// <summary>Weight presets by name (values text as written).</summary>
    public IReadOnlyDictionary<string, string> Weights { get; }

    /// <summary>Elemental presets by name (directives text).</summary>
    public IReadOnlyDictionary<string, string> Elementals { get; }

    private LbwPresets(Dictionary<string, string> weights, Dictionary<string, string> elementals)
    {
        Weights = weights;
        Elementals = elementals;
    }

    /// <summary>Defaults plus user texts (null for none); a user preset replaces a default of the same name.</summary>
    public static LbwPresets Create(string? userWeights, string? userElementals)
    {
        var weights = new Dictionary<string, string>(StringComparer.Ordinal);
        ParseWeights(DefaultWeightText, weights);
        if (userWeights is not null) ParseWeights(userWeights, weights);
        var elementals = new Dictionary<string, string>(StringComparer.Ordinal);
        ParseElementals(DefaultElementalText, elementals);
        if (userElementals is not null) ParseElementals(userElementals, elementals);
        return new LbwPresets(weights, elementals);
    }

    /// <summary>Defaults plus <c>lbwpresets.txt</c> and <c>elempresets.txt</c> from <paramref name="folder"/> when present.</summary>
    public static LbwPresets Load(string folder)
    {
        static string? Read(string path) => File.Exists(path) ? File.ReadAllText(path, Encoding.UTF8) : null;
        return Create(Read(Path.Combine(folder, "lbwpresets.txt")), Read(Path.Combine(folder, "elempresets.txt")));
    }

    // LBW's checkloadcond: lines with '#', without ':' or with another value count are skipped.
    private static void ParseWeights(string text, Dictionary<string, string> into)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (!line.Contains(':') || line.Contains('#')) continue;
            int commas = line.Count(c => c == ',');
            if (!AllowedCounts.Contains(commas + 1)) continue;
            int colon = line.IndexOf(':');
            into[line[..colon].Trim()] = line[(colon + 1)..];
        }
    }

    private static void ParseElementals(string text, Dictionary<string, string> into)
    {
        foreach (var block in text.Replace("\r\n", "\n").Split("\n\n"))
        {
            int colon = block.IndexOf(':');
            if (colon < 0) continue;
            into[block[..colon].Trim()] = block[(colon + 1)..];
        }
    }
}

/// <summary>Block weights of one LoRA, as sent to the model side.</summary>
/// <param name="Name">LoRA name as the prompt writes it.</param>
/// <param name="Weights">Block ratios as written: 12, 17, 20, 26 or 61 values (expanded to 26 by their count on the model side).</param>
/// <param name="Elemental">Elemental directives text (empty for none).</param>
public sealed record LoraBlockWeights(string Name, IReadOnlyList<double> Weights, string Elemental)
{
    /// <summary>All ones and no elemental directives: LBW leaves such a network alone.</summary>
    public bool IsTrivial => Elemental.Length == 0 && Weights.All(w => w == 1.0);
}

/// <summary>
/// Reads <c>lbw=</c> / <c>lbwe=</c> of a prompt's LoRA tags. Where LBW silently ignores a value (unknown preset, a value
/// count it does not know) or crashes (random <c>R</c>/<c>U</c>, <c>X</c> without a base), this is an error with its
/// position in the prompt. Tags without <c>lbw=</c>/<c>lbwe=</c> are not read at all, so A1111's semantics stay.
/// </summary>
public static class BlockWeightReader
{
    /// <summary>Block weights per LoRA name (first tag with block weights wins, as in LBW), or the first error.</summary>
    public static PromptResult<IReadOnlyList<LoraBlockWeights>> Read(string prompt, LbwPresets presets)
    {
        var en = ExtraNetworks.Parse(prompt);
        var tags = en.Tags.Where(t => t.Type is "lora" or "lyco").ToList();
        var result = new List<LoraBlockWeights>();
        bool any = tags.Any(t => Find(t, "lbw=") >= 0 || Find(t, "lbwe=") >= 0);
        if (!any) return PromptResult<IReadOnlyList<LoraBlockWeights>>.Ok(result);
        foreach (var tag in tags)
        {
            var error = CheckMultipliers(tag);
            if (error is not null) return Fail(error);
            if (tag.Positional.Count == 0) continue;
            var read = ReadTag(tag, presets);
            if (!read.IsOk) return Fail(read.Error!);
            if (read.Value is { } bw && !bw.IsTrivial && result.All(r => r.Name != bw.Name)) result.Add(bw);
        }
        return PromptResult<IReadOnlyList<LoraBlockWeights>>.Ok(result);
    }

    private static PromptResult<IReadOnlyList<LoraBlockWeights>> Fail(PromptError e) => PromptResult<IReadOnlyList<LoraBlockWeights>>.Fail(e);

    /// <summary>One tag's block weights (null when it has none).</summary>
    public static PromptResult<LoraBlockWeights?> ReadTag(ExtraNetworkTag tag, LbwPresets presets)
    {
        int wi = Find(tag, "lbw=");
        int ei = Find(tag, "lbwe=");
        if (Find(tag, "step=") is int si and >= 0)
            return Error(tag, si, "step= is not supported; write start= and stop=");
        double[]? values = null;
        if (wi >= 0)
        {
            string text = After(tag.Items[wi], "lbw=");
            string name = text.Trim();
            string list;
            if (presets.Weights.TryGetValue(name, out var preset)) list = preset;
            else if (!text.Contains(','))
                return Error(tag, wi, $"unknown block-weight preset '{name}' (known: {string.Join(", ", presets.Weights.Keys)})");
            else list = text;
            var parts = list.Split(',');
            if (!LbwPresets.AllowedCounts.Contains(parts.Length))
                return Error(tag, wi, $"{parts.Length} block weights; give 12 (SDXL), 17 (SD1), 20, 26 or 61 values, or a preset name");
            values = new double[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                var v = parts[i].Trim();
                if (!Value(tag, v, out values[i], out string? why)) return Error(tag, wi, $"block weight {i + 1} '{v}': {why}");
            }
        }
        string elemental = "";
        if (ei >= 0)
        {
            string name = After(tag.Items[ei], "lbwe=").Trim();
            if (!presets.Elementals.TryGetValue(name, out var e))
                return Error(tag, ei, $"unknown elemental preset '{name}' (known: {string.Join(", ", presets.Elementals.Keys)})");
            elemental = e;
        }
        if (values is null && elemental.Length == 0) return PromptResult<LoraBlockWeights?>.Ok(null);
        return PromptResult<LoraBlockWeights?>.Ok(new LoraBlockWeights(tag.Positional[0], values ?? Enumerable.Repeat(1.0, 26).ToArray(), elemental));
    }

    /// <summary>Offset of item <paramref name="index"/> of a tag in the prompt.</summary>
    public static int ItemOffset(ExtraNetworkTag tag, int index)
    {
        int pos = tag.Start + 1 + tag.Type.Length + 1;
        for (int i = 0; i < index; i++) pos += tag.Items[i].Length + 1;
        return pos;
    }

    private static PromptResult<LoraBlockWeights?> Error(ExtraNetworkTag tag, int item, string message) =>
        PromptResult<LoraBlockWeights?>.Fail(new PromptError(PromptErrorKind.ValueError, ItemOffset(tag, item), $"<{tag.Type}:{tag.Items[0]}>: {message}"));

    // LBW looks items up by substring ("lbw=" anywhere in the item); the same rule here so both read one item.
    private static int Find(ExtraNetworkTag tag, string key)
    {
        for (int i = 1; i < tag.Items.Count; i++)
            if (tag.Items[i].Contains(key, StringComparison.Ordinal)) return i;
        return -1;
    }

    private static string After(string item, string key) => item.Replace(key, "", StringComparison.Ordinal);

    private static bool Value(ExtraNetworkTag tag, string v, out double value, out string? why)
    {
        why = null;
        if (v is "R" or "U")
        {
            value = 0;
            why = "random values (R, U) are not reproducible and not supported";
            return false;
        }
        if (v.StartsWith('X'))
        {
            value = 0;
            double x = 1.0;
            int xi = Find(tag, "x=");
            if (xi >= 0 && !tag.Items[xi].Contains("lbw", StringComparison.Ordinal))
            {
                if (!PyText.TryParseFloat(After(tag.Items[xi], "x="), out x)) { why = $"x= '{tag.Items[xi]}' is not a number"; return false; }
            }
            else if (tag.Items.Count >= 4) { why = "X needs x=VALUE in the tag (LBW fails here)"; return false; }
            string rest = v[1..];
            if (rest.Length == 0) { value = x; return true; }
            if (rest[0] is '+' or '-' && double.TryParse(rest[1..], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double d))
            {
                value = rest[0] == '+' ? x + d : x - d;
                return true;
            }
            why = "write X, X+a or X-a";
            return false;
        }
        if (PyText.TryParseFloat(v, out value)) return true;
        why = "not a number";
        return false;
    }

    // With block weights LBW re-reads te/unet itself (positional te = item 1, unet = item 2 even after a named te=).
    // Where that differs from A1111's reading the prompt is ambiguous; say so instead of picking one silently.
    private static PromptError? CheckMultipliers(ExtraNetworkTag tag)
    {
        if (ExtraNetworks.ReadLora(tag, out var a1111) is not null || a1111 is null) return null; // reported by the plan
        string? te = LbwItem(tag, "te=", 1), unet = LbwItem(tag, "unet=", 2);
        if (te?.Contains('@') == true || unet?.Contains('@') == true) return null; // keyframes: LoraBridge's reading
        double lt, lu;
        if (te is null && unet is null) (lt, lu) = (1, 1);
        else if (te is null) { if (!PyText.TryParseFloat(unet!, out lu)) return null; lt = lu; }
        else if (unet is null) { if (!PyText.TryParseFloat(te, out lt)) return null; lu = lt; }
        else if (!PyText.TryParseFloat(te, out lt) || !PyText.TryParseFloat(unet, out lu)) return null;
        if (lt == a1111.TeMultiplier && lu == a1111.UnetMultiplier) return null;
        return new PromptError(PromptErrorKind.ValueError, tag.Start,
            $"<{tag.Type}:{tag.Items[0]}>: with block weights the multipliers are ambiguous (A1111 reads te {Num(a1111.TeMultiplier)} unet {Num(a1111.UnetMultiplier)}, " +
            $"the block-weight extension te {Num(lt)} unet {Num(lu)}); write them as te=…:unet=…");
    }

    private static string Num(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    private static string? LbwItem(ExtraNetworkTag tag, string key, int index)
    {
        foreach (var item in tag.Items)
            if (item.Contains(key, StringComparison.Ordinal)) return After(item, key);
        if (index >= tag.Items.Count || tag.Items[index].Contains('=')) return null;
        return tag.Items[index];
    }
}
