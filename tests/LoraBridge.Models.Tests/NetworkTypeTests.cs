using System.Text.Json;

namespace LoraBridge.Models.Tests;

public sealed class NetworkTypeTests : IDisposable
{
    private readonly TempWebUi _w = new();

    public void Dispose() => _w.Dispose();

    private NetworkAnalysis Analyze(params St.T[] tensors)
    {
        var p = St.Write(Path.Combine(_w.Root, Guid.NewGuid().ToString("N") + ".safetensors"), tensors);
        return NetworkAnalysis.Analyze(SafetensorsHeader.Read(p));
    }

    private const string L = "lora_unet_mid_block_attentions_0_proj_in";
    private const string C = "lora_unet_down_blocks_0_resnets_0_conv1";

    [Fact]
    public void LoraLinearAndOneByOneConvAreLora()
    {
        var a = Analyze(St.F32(L + ".lora_down.weight", 8, 64, 1, 1), St.F32(L + ".lora_up.weight", 64, 8, 1, 1), St.F32(L + ".alpha"));
        Assert.Equal("lora", a.NetworkType);
        Assert.Equal("8", a.RankText);
        var g = Assert.Single(a.Groups);
        Assert.Equal((L, "lora", 8L, false), (g.Key, g.ModuleType!, g.Rank!.Value, g.Cp));
    }

    [Fact]
    public void SpatialConvOrMidMakesLocon()
    {
        var a = Analyze(St.F32(L + ".lora_down.weight", 8, 64), St.F32(L + ".lora_up.weight", 64, 8),
            St.F32(C + ".lora_down.weight", 4, 32, 3, 3), St.F32(C + ".lora_up.weight", 32, 4, 1, 1));
        Assert.Equal("locon", a.NetworkType);
        Assert.Equal("4-8", a.RankText);
        var cp = Analyze(St.F32(C + ".lora_down.weight", 4, 32, 1, 1), St.F32(C + ".lora_mid.weight", 4, 4, 3, 3), St.F32(C + ".lora_up.weight", 32, 4, 1, 1));
        Assert.True(Assert.Single(cp.Groups).Cp);
        Assert.Equal("locon", cp.NetworkType);
    }

    [Fact]
    public void DoraLohaLokrIa3FullNormGloraOftBoft()
    {
        Assert.Equal("dora", Analyze(St.F32(L + ".lora_down.weight", 4, 64), St.F32(L + ".lora_up.weight", 64, 4), St.F32(L + ".dora_scale", 1, 64)).NetworkType);

        var loha = Analyze(St.F32(L + ".hada_w1_a", 64, 6), St.F32(L + ".hada_w1_b", 6, 64), St.F32(L + ".hada_w2_a", 64, 6), St.F32(L + ".hada_w2_b", 6, 64));
        Assert.Equal(("loha", "6"), (loha.NetworkType, loha.RankText));

        var lokr = Analyze(St.F32(L + ".lokr_w1", 8, 8), St.F32(L + ".lokr_w2_a", 8, 3), St.F32(L + ".lokr_w2_b", 3, 8));
        Assert.Equal(("lokr", "3"), (lokr.NetworkType, lokr.RankText));
        var lokrFull = Analyze(St.F32(L + ".lokr_w1", 8, 8), St.F32(L + ".lokr_w2", 8, 8));
        Assert.Equal(("lokr", ""), (lokrFull.NetworkType, lokrFull.RankText));

        Assert.Equal("ia3", Analyze(St.F32(L + ".weight", 64), new St.T(L + ".on_input", "I64", [])).NetworkType);
        Assert.Equal("full", Analyze(St.F32(L + ".diff", 64, 64), St.F32(L + ".diff_b", 64)).NetworkType);
        Assert.Equal("norm", Analyze(St.F32(L + ".w_norm", 64), St.F32(L + ".b_norm", 64)).NetworkType);
        var glora = Analyze(St.F32(L + ".a1.weight", 4, 64), St.F32(L + ".a2.weight", 64, 4), St.F32(L + ".b1.weight", 4, 64), St.F32(L + ".b2.weight", 64, 4), St.F32(L + ".alpha"));
        Assert.Equal(("glora", "4"), (glora.NetworkType, glora.RankText));
        Assert.Equal("oft", Analyze(St.F32(L + ".oft_blocks", 8, 8, 8), St.F32(L + ".alpha")).NetworkType);
        Assert.Equal("oft", Analyze(St.F32(L + ".oft_diag", 8, 8, 8)).NetworkType);
        Assert.Equal("boft", Analyze(St.F32(L + ".oft_blocks", 2, 16, 4, 4), St.F32(L + ".alpha")).NetworkType);
    }

    [Fact]
    public void NormWithoutBiasAndGloraWithoutAlphaAreRejectedAsA1111Does()
    {
        var a = Analyze(St.F32(L + ".w_norm", 64));
        Assert.Equal("unknown", a.NetworkType);
        Assert.Null(Assert.Single(a.Groups).ModuleType);
        Assert.Equal("unknown", Analyze(St.F32(L + ".a1.weight", 4, 64), St.F32(L + ".a2.weight", 64, 4), St.F32(L + ".b1.weight", 4, 64), St.F32(L + ".b2.weight", 64, 4)).NetworkType);
    }

    [Fact]
    public void MixedFilesJoinKinds()
    {
        var a = Analyze(St.F32(L + ".lora_down.weight", 4, 64), St.F32(L + ".lora_up.weight", 64, 4),
            St.F32("lora_te_text_model_final_layer_norm.w_norm", 16), St.F32("lora_te_text_model_final_layer_norm.b_norm", 16));
        Assert.Equal("lora+norm", a.NetworkType);
    }

    [Fact]
    public void PeftAndDiffusersKeysGroupByModule()
    {
        var peft = Analyze(
            St.F32("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight", 4, 1024),
            St.F32("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight", 320, 4));
        var g = Assert.Single(peft.Groups);
        Assert.Equal("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", g.Key);
        Assert.Equal(("lora", 4L), (g.ModuleType!, g.Rank!.Value));
        Assert.Equal(BaseFamily.SD2, peft.KeyFamily);

        var diffusers = Analyze(
            St.F32("unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight", 8, 1280),
            St.F32("unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight", 1280, 8));
        Assert.Equal(("lora", "8"), (diffusers.NetworkType, diffusers.RankText));
    }

    [Fact]
    public void SdxlTe2KeysMeanSdxl()
    {
        var a = Analyze(St.F32("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", 4, 1280), St.F32("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", 5120, 4));
        Assert.Equal(BaseFamily.SDXL, a.KeyFamily);
    }

    /// <summary>What an index.json "algo" means in terms of this library's group classification.</summary>
    private static (string ModuleType, string Kind, bool? Cp) Expected(string algo) => algo switch
    {
        "lora" => ("lora", "lora|locon", false),
        "lora+cp" => ("lora", "locon", true),
        "loha" => ("hada", "loha", false),
        "loha+tucker" => ("hada", "loha", true),
        "lokr" => ("lokr", "lokr", null),
        "ia3" => ("ia3", "ia3", false),
        "full" => ("full", "full", false),
        "norm" => ("norm", "norm", false),
        "glora-old" or "glora-new" or "glora-old_conv" => ("glora", "glora", false),
        "oft_blocks" or "oft_diag" => ("oft", "oft", false),
        "boft" => ("oft", "boft", false),
        "lora+dora_in" or "lora+dora_out" => ("lora", "dora", false),
        _ => throw new InvalidDataException($"index.json algo '{algo}' has no expectation in this test"),
    };

    [SharedFact]
    public void ConformanceLorasGetTheTypesIndexJsonStates()
    {
        string dir = SharedData.Path("conformance", "lora", "loras");
        Assert.True(Directory.Exists(dir), $"shared conformance data missing at {dir}");
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "index.json")));
        var catalog = new LoraCatalog(new CatalogOptions { LoraDirs = [dir] });

        var files = index.RootElement.GetProperty("files").EnumerateObject().ToList();
        Assert.Equal(files.Count, catalog.Loras.Count);
        int checkedGroups = 0;
        foreach (var f in files)
        {
            var entry = catalog.Find(f.Name);
            Assert.True(entry.Error is null, entry.Error);
            Assert.Equal(f.Value.GetProperty("bytes").GetInt64(), entry.Size);
            var meta = f.Value.GetProperty("metadata");
            if (meta.TryGetProperty("ss_output_name", out var alias))
                Assert.Equal(alias.GetString(), catalog.AliasOf(entry));
            var groups = entry.Analysis!.Groups.ToDictionary(g => g.Key);
            foreach (var g in f.Value.GetProperty("groups").EnumerateArray())
            {
                string key = g.GetProperty("network_key").GetString()!;
                string algo = g.GetProperty("algo").GetString()!;
                var (moduleType, kind, cp) = Expected(algo);
                Assert.True(groups.TryGetValue(key, out var mine), $"{f.Name}: group {key} not found");
                Assert.True(moduleType == mine!.ModuleType, $"{f.Name}/{key}: module type {mine.ModuleType}, index says {algo}");
                Assert.True(kind.Split('|').Contains(mine.Kind), $"{f.Name}/{key}: kind {mine.Kind}, index says {algo}");
                if (cp is not null) Assert.Equal(cp, mine.Cp);
                if (g.TryGetProperty("rank", out var rank) && moduleType is "lora" or "hada" or "glora")
                    Assert.Equal(rank.GetInt64(), mine.Rank);
                checkedGroups++;
            }
            Assert.Equal(f.Value.GetProperty("groups").GetArrayLength(), groups.Count);
        }
        Assert.True(checkedGroups > 100, $"only {checkedGroups} groups checked");
        Assert.Equal("dora", catalog.Find("dora").NetworkType);
        Assert.Equal("locon", catalog.Find("locon_cp").NetworkType);
        Assert.Equal("boft", catalog.Find("boft").NetworkType);
    }
}
