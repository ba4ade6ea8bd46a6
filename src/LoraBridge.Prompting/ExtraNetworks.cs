using System.Numerics;

namespace LoraBridge.Prompting;

/// <summary>One <c>&lt;type:args&gt;</c> tag as <c>extra_networks.ExtraNetworkParams</c> sees it.</summary>
/// <param name="Type">The tag type (<c>lora</c>, <c>hypernet</c>, ...), case-sensitive.</param>
/// <param name="Items">Arguments split on <c>:</c>, untrimmed.</param>
/// <param name="Positional">Items that are not <c>key=value</c>.</param>
/// <param name="Named">Named items in first-insertion order; a later duplicate key replaces the value.</param>
/// <param name="Start">Offset of <c>&lt;</c> in the original prompt.</param>
/// <param name="End">Offset just past <c>&gt;</c>.</param>
public sealed record ExtraNetworkTag(
    string Type,
    IReadOnlyList<string> Items,
    IReadOnlyList<string> Positional,
    IReadOnlyList<KeyValuePair<string, string>> Named,
    int Start,
    int End)
{
    /// <summary>Looks a named argument up.</summary>
    public bool TryGetNamed(string key, out string value)
    {
        foreach (var kv in Named)
            if (kv.Key == key) { value = kv.Value; return true; }
        value = "";
        return false;
    }
}

/// <summary>Result of <c>extra_networks.parse_prompt</c>.</summary>
/// <param name="Prompt">The prompt with every tag removed (no whitespace clean-up).</param>
/// <param name="Tags">Every tag in prompt order.</param>
/// <param name="TypeOrder">Tag types in order of first appearance (A1111's dict order).</param>
public sealed record ExtraNetworkParse(string Prompt, IReadOnlyList<ExtraNetworkTag> Tags, IReadOnlyList<string> TypeOrder)
{
    /// <summary>
    /// Maps an offset in a text derived from the original prompt by removing tags (or, for tags matching
    /// <paramref name="keptAsOneChar"/>, replacing each with one character) back to the original prompt.
    /// </summary>
    public int ToOriginalOffset(int offset, Func<ExtraNetworkTag, bool>? keptAsOneChar = null)
    {
        int shift = 0;
        foreach (var tag in Tags)
        {
            int kept = keptAsOneChar?.Invoke(tag) == true ? 1 : 0;
            int derivedStart = tag.Start - shift;
            if (offset < derivedStart + kept) break;
            shift += tag.End - tag.Start - kept;
        }
        return offset + shift;
    }

    /// <summary>Tags of one type, in prompt order.</summary>
    public IEnumerable<ExtraNetworkTag> OfType(string type) => Tags.Where(t => t.Type == type);
}

/// <summary>One LoRA as Lora's <c>activate</c> reads it.</summary>
/// <param name="Name">positional[0].</param>
/// <param name="TeMultiplier">Text-encoder multiplier.</param>
/// <param name="UnetMultiplier">UNet multiplier (defaults to te).</param>
/// <param name="DynDim">DyLoRA dimension or null.</param>
public sealed record LoraActivation(string Name, double TeMultiplier, double UnetMultiplier, BigInteger? DynDim);

/// <summary>One hypernetwork as <c>ExtraNetworkHypernet.activate</c> reads it.</summary>
/// <param name="Name">items[0].</param>
/// <param name="Multiplier">float(items[1]) or 1.0.</param>
public sealed record HypernetActivation(string Name, double Multiplier);

/// <summary>One <c>activate</c> call of <c>extra_networks.activate</c>.</summary>
/// <param name="Network"><c>lora</c> or <c>hypernet</c>.</param>
/// <param name="Loras">LoRAs loaded by a successful lora call.</param>
/// <param name="Hypernets">Hypernets loaded by a successful hypernet call.</param>
/// <param name="Error">Python exception type when the call raised (then nothing is loaded).</param>
public sealed record ActivationCall(
    string Network,
    IReadOnlyList<LoraActivation> Loras,
    IReadOnlyList<HypernetActivation> Hypernets,
    PromptError? Error);

/// <summary>What <c>extra_networks.activate</c> does for one prompt.</summary>
/// <param name="Calls">Calls in order.</param>
/// <param name="Skipped">Unknown types (logged and skipped).</param>
public sealed record ActivationResult(IReadOnlyList<ActivationCall> Calls, IReadOnlyList<string> Skipped)
{
    /// <summary>The LoRAs that end up loaded: those of the last lora call.</summary>
    public IReadOnlyList<LoraActivation> LoadedLoras =>
        Calls.LastOrDefault(c => c.Network == "lora")?.Loras ?? [];
}

/// <summary>A1111's extra-network tag handling (<c>modules/extra_networks.py</c>, Lora and hypernet activation).</summary>
public static class ExtraNetworks
{
    /// <summary><c>re.sub(r"&lt;(\w+):([^&gt;]+)&gt;", "", prompt)</c>, collecting tags.</summary>
    public static ExtraNetworkParse Parse(string prompt)
    {
        var tags = new List<ExtraNetworkTag>();
        var types = new List<string>();
        var stripped = new System.Text.StringBuilder(prompt.Length);
        int copied = 0;
        int i = 0;
        while (i < prompt.Length)
        {
            int lt = prompt.IndexOf('<', i);
            if (lt < 0) break;
            if (TryMatchTag(prompt, lt, out int colon, out int gt))
            {
                var type = prompt[(lt + 1)..colon];
                var args = prompt[(colon + 1)..gt];
                tags.Add(MakeTag(type, args, lt, gt + 1));
                if (!types.Contains(type)) types.Add(type);
                stripped.Append(prompt, copied, lt - copied);
                copied = gt + 1;
                i = gt + 1;
            }
            else i = lt + 1;
        }
        stripped.Append(prompt, copied, prompt.Length - copied);
        return new ExtraNetworkParse(stripped.ToString(), tags, types);
    }

    private static bool TryMatchTag(string s, int lt, out int colon, out int gt)
    {
        colon = gt = -1;
        int p = lt + 1;
        while (p < s.Length)
        {
            int cp = PyText.CodePointAt(s, p, out int len);
            if (!PyText.IsWord(cp)) break;
            p += len;
        }
        if (p == lt + 1 || p >= s.Length || s[p] != ':') return false;
        int close = s.IndexOf('>', p + 1);
        if (close < 0 || close == p + 1) return false; // [^>]+ needs one character
        colon = p;
        gt = close;
        return true;
    }

    /// <summary>Builds <c>ExtraNetworkParams(items=args.split(":"))</c>.</summary>
    public static ExtraNetworkTag MakeTag(string type, string args, int start, int end)
    {
        var items = args.Split(':');
        var positional = new List<string>();
        var named = new List<KeyValuePair<string, string>>();
        foreach (var item in items)
        {
            // item.split('=', 2) has exactly two parts only when there is exactly one '='.
            int eq = item.IndexOf('=');
            if (eq >= 0 && item.IndexOf('=', eq + 1) < 0)
            {
                var key = item[..eq];
                var kv = new KeyValuePair<string, string>(key, item[(eq + 1)..]);
                int existing = named.FindIndex(x => x.Key == key);
                if (existing >= 0) named[existing] = kv; else named.Add(kv);
            }
            else positional.Add(item);
        }
        return new ExtraNetworkTag(type, items, positional, named, start, end);
    }

    /// <summary>
    /// <c>extra_networks.activate</c> with the built-in registry (hypernet, then lora; <c>lyco</c> is an alias of lora).
    /// A failing network is re-activated with no arguments, so one bad LoRA tag unloads every LoRA.
    /// </summary>
    public static ActivationResult Activate(ExtraNetworkParse parse)
    {
        var calls = new List<ActivationCall>();
        var skipped = new List<string>();
        var order = new List<string>();
        var args = new Dictionary<string, List<ExtraNetworkTag>>();
        foreach (var type in parse.TypeOrder)
        {
            string? network = type switch { "hypernet" => "hypernet", "lora" or "lyco" => "lora", _ => null };
            if (network is null) { skipped.Add(type); continue; }
            if (!args.TryGetValue(network, out var list)) { args[network] = list = []; order.Add(network); }
            list.AddRange(parse.OfType(type));
        }
        var activated = new HashSet<string>();
        foreach (var network in order)
        {
            var call = network == "lora" ? ActivateLora(args[network]) : ActivateHypernet(args[network]);
            calls.Add(call);
            if (call.Error is null) activated.Add(network);
        }
        foreach (var network in new[] { "hypernet", "lora" })
            if (!activated.Contains(network))
                calls.Add(new ActivationCall(network, [], [], null));
        return new ActivationResult(calls, skipped);
    }

    private static ActivationCall ActivateLora(List<ExtraNetworkTag> tags)
    {
        var loras = new List<LoraActivation>();
        foreach (var tag in tags)
        {
            var error = ReadLora(tag, out var lora);
            if (error is not null) return new ActivationCall("lora", [], [], error);
            loras.Add(lora!);
        }
        return new ActivationCall("lora", loras, [], null);
    }

    /// <summary>Reads one LoRA tag exactly as A1111 does, in A1111's evaluation order (the first failure wins).</summary>
    public static PromptError? ReadLora(ExtraNetworkTag tag, out LoraActivation? lora)
    {
        lora = null;
        var pos = tag.Positional;
        if (pos.Count == 0)
            return new PromptError(PromptErrorKind.IndexError, tag.Start, $"<{tag.Type}:...> has no positional argument for the LoRA name", PromptErrorSource.Network);
        double te = 1.0;
        if (pos.Count > 1 && !Float(pos[1], tag, "te multiplier", out te, out var e1)) return e1;
        if (tag.TryGetNamed("te", out var teNamed) && !Float(teNamed, tag, "te=", out te, out var e2)) return e2;
        double unet = te;
        if (pos.Count > 2 && !Float(pos[2], tag, "unet multiplier", out unet, out var e3)) return e3;
        if (tag.TryGetNamed("unet", out var unetNamed) && !Float(unetNamed, tag, "unet=", out unet, out var e4)) return e4;
        BigInteger? dyn = null;
        if (pos.Count > 3)
        {
            if (!PyText.TryParseInt(pos[3], out var d)) return ValueError(tag, "dyn", pos[3], "int");
            dyn = d;
        }
        if (tag.TryGetNamed("dyn", out var dynNamed))
        {
            if (!PyText.TryParseInt(dynNamed, out var d)) return ValueError(tag, "dyn=", dynNamed, "int");
            dyn = d;
        }
        lora = new LoraActivation(pos[0], te, unet, dyn);
        return null;
    }

    private static bool Float(string text, ExtraNetworkTag tag, string what, out double value, out PromptError? error)
    {
        error = PyText.TryParseFloat(text, out value) ? null : ValueError(tag, what, text, "float");
        return error is null;
    }

    private static PromptError ValueError(ExtraNetworkTag tag, string what, string text, string kind) =>
        new(PromptErrorKind.ValueError, tag.Start, $"<{tag.Type}:...>: {what} '{text}' is not a valid Python {kind}", PromptErrorSource.Network);

    private static ActivationCall ActivateHypernet(List<ExtraNetworkTag> tags)
    {
        var list = new List<HypernetActivation>();
        foreach (var tag in tags)
        {
            double m = 1.0;
            if (tag.Items.Count > 1 && !PyText.TryParseFloat(tag.Items[1], out m))
                return new ActivationCall("hypernet", [], [], ValueError(tag, "multiplier", tag.Items[1], "float"));
            list.Add(new HypernetActivation(tag.Items[0], m));
        }
        return new ActivationCall("hypernet", [], list, null);
    }
}
