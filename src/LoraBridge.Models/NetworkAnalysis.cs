namespace LoraBridge.Models;

/// <summary>Stable Diffusion family a file was made for; the names are A1111's <c>network.SdVersion</c> members.</summary>
public enum BaseFamily
{
    /// <summary>Not known.</summary>
    Unknown,
    /// <summary>SD 1.x.</summary>
    SD1,
    /// <summary>SD 2.x.</summary>
    SD2,
    /// <summary>SDXL.</summary>
    SDXL,
}

/// <summary>
/// One key group (one target layer) of a LoRA-family file and the module type A1111 would build for it.
/// </summary>
/// <param name="Key">Group key, e.g. <c>lora_unet_down_blocks_0_attentions_0_proj_in</c>.</param>
/// <param name="Parts">Part names in the group (<c>lora_down.weight</c>, <c>alpha</c>, ...).</param>
/// <param name="ModuleType">A1111 module type (<c>lora</c>, <c>hada</c>, <c>ia3</c>, <c>lokr</c>, <c>full</c>, <c>norm</c>,
/// <c>glora</c>, <c>oft</c>), or null when no type accepts the keys (A1111 then refuses the whole file).</param>
/// <param name="Kind">User-facing type: lora, locon, dora, loha, lokr, ia3, full, norm, glora, oft, boft, or unknown.</param>
/// <param name="Rank">The dim A1111 uses for the alpha/dim scale, when the type has one.</param>
/// <param name="Cp">True for CP/Tucker decompositions (<c>lora_mid</c>, <c>hada_t1</c>/<c>hada_t2</c>, <c>lokr_t2</c>).</param>
public sealed record NetworkGroup(string Key, IReadOnlyList<string> Parts, string? ModuleType, string Kind, long? Rank, bool Cp);

/// <summary>What the key names and shapes of a LoRA-family file say about it, without loading any tensor.</summary>
/// <param name="NetworkType">File-level type: the group kinds joined with '+' (e.g. <c>lora</c>, <c>locon</c>, <c>loha</c>, <c>lora+norm</c>).</param>
/// <param name="Ranks">Distinct ranks of the groups, ascending.</param>
/// <param name="Groups">Every key group.</param>
/// <param name="KeyFamily">Family guessed from key names and shapes (fallback when metadata says nothing).</param>
public sealed record NetworkAnalysis(string NetworkType, IReadOnlyList<long> Ranks, IReadOnlyList<NetworkGroup> Groups, BaseFamily KeyFamily)
{
    /// <summary>Display rank: the single rank, or "min-max" when groups differ; empty when no group has one.</summary>
    public string RankText => Ranks.Count switch
    {
        0 => "",
        1 => Ranks[0].ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => $"{Ranks[0]}-{Ranks[^1]}",
    };

    // Part names A1111's module types read. A key is split at its first '.', as networks.py:load_network does; the
    // suffix table below handles diffusers/PEFT keys whose module paths contain dots.
    private static readonly HashSet<string> KnownParts = new(StringComparer.Ordinal)
    {
        "lora_up.weight", "lora_down.weight", "lora_mid.weight", "lora_A.weight", "lora_B.weight", "alpha", "scale",
        "dora_scale", "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2",
        "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t1", "lokr_t2",
        "weight", "on_input", "diff", "diff_b", "w_norm", "b_norm", "a1.weight", "a2.weight", "b1.weight", "b2.weight",
        "oft_blocks", "oft_diag", "rescale", "bias_indices", "bias_values", "bias_size",
    };

    // Diffusers and PEFT spellings, mapped to the kohya part they mean.
    private static readonly (string Suffix, string Part)[] DottedSuffixes =
    {
        (".lora.down.weight", "lora_down.weight"), (".lora.up.weight", "lora_up.weight"),
        ("_lora.down.weight", "lora_down.weight"), ("_lora.up.weight", "lora_up.weight"),
        (".lora_A.weight", "lora_down.weight"), (".lora_B.weight", "lora_up.weight"),
        (".lora_A.default.weight", "lora_down.weight"), (".lora_B.default.weight", "lora_up.weight"),
        (".lora_down.weight", "lora_down.weight"), (".lora_up.weight", "lora_up.weight"),
        (".lora_mid.weight", "lora_mid.weight"), (".lora_magnitude_vector", "dora_scale"),
        (".alpha", "alpha"), (".dora_scale", "dora_scale"),
    };

    /// <summary>Groups the tensor keys of a header and classifies each group in A1111's <c>module_types</c> order.</summary>
    public static NetworkAnalysis Analyze(SafetensorsHeader header)
    {
        var groups = new Dictionary<string, Dictionary<string, TensorInfo>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var t in header.Tensors)
        {
            var (group, part) = SplitKey(t.Name);
            if (!groups.TryGetValue(group, out var parts))
            {
                groups[group] = parts = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
                order.Add(group);
            }
            parts[part] = t;
        }

        var result = order.Select(g => Classify(g, groups[g])).ToList();
        var kinds = result.Select(g => g.Kind).Distinct().ToList();
        string type = FileType(kinds);
        var ranks = result.Where(g => g.Rank is not null).Select(g => g.Rank!.Value).Distinct().Order().ToList();
        return new NetworkAnalysis(type, ranks, result, FamilyFromKeys(groups));
    }

    /// <summary>Splits a tensor key into its group (target layer) and part, normalising diffusers/PEFT spellings.</summary>
    public static (string Group, string Part) SplitKey(string key)
    {
        int dot = key.IndexOf('.');
        if (dot > 0 && KnownParts.Contains(key[(dot + 1)..]))
            return (key[..dot], key[(dot + 1)..]);
        foreach (var (suffix, part) in DottedSuffixes)
        {
            if (key.Length > suffix.Length && key.EndsWith(suffix, StringComparison.Ordinal))
                return (key[..^suffix.Length], part);
        }
        int last = key.LastIndexOf('.');
        return last > 0 ? (key[..last], key[(last + 1)..]) : (key, "");
    }

    private static NetworkGroup Classify(string key, Dictionary<string, TensorInfo> w)
    {
        var parts = w.Keys.ToList();
        bool Has(params string[] names) => names.All(w.ContainsKey);
        long? Dim0(string part) => w.TryGetValue(part, out var t) && t.Shape.Count > 0 ? t.Shape[0] : null;

        // Same order and acceptance rules as A1111 v1.10.1 networks.module_types.
        if (Has("lora_up.weight", "lora_down.weight") || Has("lora_A.weight", "lora_B.weight"))
        {
            var down = w.GetValueOrDefault("lora_down.weight") ?? w["lora_A.weight"];
            bool cp = w.ContainsKey("lora_mid.weight");
            bool spatialConv = down.Shape.Count == 4 && (down.Shape[2] > 1 || down.Shape[3] > 1);
            string kind = w.ContainsKey("dora_scale") ? "dora" : (cp || spatialConv) ? "locon" : "lora";
            return new NetworkGroup(key, parts, "lora", kind, down.Shape.Count > 0 ? down.Shape[0] : null, cp);
        }
        if (Has("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"))
            return new NetworkGroup(key, parts, "hada", w.ContainsKey("dora_scale") ? "dora" : "loha", Dim0("hada_w1_b"), Has("hada_t1", "hada_t2"));
        if (Has("weight"))
            return new NetworkGroup(key, parts, "ia3", "ia3", null, false);
        bool has1 = Has("lokr_w1") || Has("lokr_w1_a", "lokr_w1_b");
        bool has2 = Has("lokr_w2") || Has("lokr_w2_a", "lokr_w2_b");
        if (has1 && has2)
            return new NetworkGroup(key, parts, "lokr", w.ContainsKey("dora_scale") ? "dora" : "lokr", Dim0("lokr_w2_b") ?? Dim0("lokr_w1_b"), Has("lokr_t2"));
        if (Has("diff"))
            return new NetworkGroup(key, parts, "full", "full", null, false);
        if (Has("w_norm", "b_norm"))
            return new NetworkGroup(key, parts, "norm", "norm", null, false);
        if (Has("a1.weight", "a2.weight", "alpha", "b1.weight", "b2.weight"))
        {
            // LyCORIS swapped the a1/a2 layout in 2024; the rank is the small side of a1 either way.
            var a1 = w["a1.weight"].Shape;
            return new NetworkGroup(key, parts, "glora", "glora", a1.Count >= 2 ? Math.Min(a1[0], a1[1]) : null, false);
        }
        if (Has("oft_blocks"))
            return new NetworkGroup(key, parts, "oft", w["oft_blocks"].Shape.Count == 4 ? "boft" : "oft", null, false);
        if (Has("oft_diag"))
            return new NetworkGroup(key, parts, "oft", "oft", null, false);
        return new NetworkGroup(key, parts, null, "unknown", null, false);
    }

    private static readonly string[] KindOrder = { "lora", "locon", "dora", "loha", "lokr", "ia3", "full", "norm", "glora", "oft", "boft", "unknown" };

    private static string FileType(List<string> kinds)
    {
        if (kinds.Count == 0) return "empty";
        // A LoCon file also patches the linear layers with plain LoRA groups, and DoRA files may leave some layers
        // undecomposed; the file is named after what distinguishes it.
        if (kinds.Contains("dora")) kinds.RemoveAll(k => k is "lora" or "locon");
        else if (kinds.Contains("locon")) kinds.Remove("lora");
        return string.Join('+', kinds.OrderBy(k => Array.IndexOf(KindOrder, k)));
    }

    private static BaseFamily FamilyFromKeys(Dictionary<string, Dictionary<string, TensorInfo>> groups)
    {
        if (groups.Keys.Any(k => k.StartsWith("lora_te2_", StringComparison.Ordinal)))
            return BaseFamily.SDXL;
        // The cross-attention key/value projections take the text-encoder width: 768 (SD1), 1024 (SD2), 2048 (SDXL).
        foreach (var (key, parts) in groups)
        {
            if (!(key.Contains("attn2_to_k") || key.Contains("attn2_to_v") || key.Contains("attn2.to_k") || key.Contains("attn2.to_v")))
                continue;
            var down = parts.GetValueOrDefault("lora_down.weight") ?? parts.GetValueOrDefault("lora_A.weight");
            if (down is { Shape.Count: >= 2 })
            {
                switch (down.Shape[1])
                {
                    case 768: return BaseFamily.SD1;
                    case 1024: return BaseFamily.SD2;
                    case 2048: return BaseFamily.SDXL;
                }
            }
        }
        return BaseFamily.Unknown;
    }
}
