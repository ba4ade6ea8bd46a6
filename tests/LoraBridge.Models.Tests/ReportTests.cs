using System.Text.Json;

namespace LoraBridge.Models.Tests;

public sealed class ReportTests : IDisposable
{
    private readonly TempWebUi _w = new();

    public void Dispose() => _w.Dispose();

    private static IReadOnlyDictionary<string, string> Freq(string json) => new Dictionary<string, string> { ["ss_tag_frequency"] = json };

    [Fact]
    public void TrainingTagsSumOverDatasetsMostFrequentFirst()
    {
        var tags = LoraReports.TrainingTags(Freq("""{"10_a": {"red hair": 5, " smile ": 2, "hat": 1}, "5_b": {"smile": 7, "hat": 1}}"""));
        Assert.Equal([("smile", 9), ("red hair", 5), ("hat", 2)], tags);
    }

    [Fact]
    public void LongCaptionsAreCountedByWordsOfThreeOrMoreCharacters()
    {
        var tags = LoraReports.TrainingTags(Freq("""{"d": {"a photo of a cat on a mat": 3, "a photo of the dog's bed": 2}}"""));
        Assert.Equal(("photo", 5), tags[0]);
        Assert.Contains(("dog's", 2), tags);
        Assert.Contains(("cat", 3), tags);
        Assert.DoesNotContain(tags, t => t.Tag.Length < 3);
    }

    [Fact]
    public void MalformedTagFrequencyYieldsNothing()
    {
        Assert.Empty(LoraReports.TrainingTags(Freq("{not json")));
        Assert.Empty(LoraReports.TrainingTags(Freq("""{"d": 3}""")));
        Assert.Empty(LoraReports.TrainingTags(new Dictionary<string, string>()));
    }

    [Fact]
    public void ListRowsTableAndJson()
    {
        var p = St.Lora(Path.Combine(_w.Lora, "styleA.safetensors"), new Dictionary<string, string>
        {
            ["ss_output_name"] = "style_a", ["ss_base_model_version"] = "sd_v1",
        }, rank: 16);
        var c = _w.Catalog();

        var rows = LoraReports.List(c);
        var r = Assert.Single(rows);
        Assert.Equal(("styleA", "style_a", "lora", "16", "SD1"), (r.Name, r.Alias, r.Type, r.Rank, r.Family));
        Assert.Equal(new FileInfo(p).Length, r.Size);
        Assert.Equal(c.ShortHashOf(c.Find("styleA")), r.ShortHash);
        Assert.Equal(12, r.ShortHash!.Length);

        var table = LoraReports.FormatTable(rows).Split('\n');
        Assert.StartsWith("NAME", table[0]);
        Assert.Contains("HASH", table[0]);
        Assert.Contains("styleA", table[1]);
        Assert.Contains(r.ShortHash, table[1]);
        Assert.Contains(LoraReports.HumanSize(r.Size), table[1]);

        using var doc = JsonDocument.Parse(LoraReports.FormatJson(rows));
        var o = doc.RootElement[0];
        Assert.Equal("style_a", o.GetProperty("alias").GetString());
        Assert.Equal(r.Size, o.GetProperty("size").GetInt64());
        Assert.Equal(r.ShortHash, o.GetProperty("short_hash").GetString());
        Assert.Equal(JsonValueKind.Null, o.GetProperty("error").ValueKind);

        // Without hashing, hashes already cached are still shown; a file never hashed shows none and stays unhashed.
        var noHash = LoraReports.List(c, withHashes: false);
        Assert.Equal(r.ShortHash, noHash[0].ShortHash);
        St.Lora(Path.Combine(_w.Lora, "styleB.safetensors"), seed: 5);
        var fresh = _w.Catalog();
        var rows2 = LoraReports.List(fresh, withHashes: false);
        Assert.Null(rows2.Single(x => x.Name == "styleB").ShortHash);
        Assert.Equal(0, fresh.Hashes.ComputedCount);
    }

    [Fact]
    public void ShowHasSidecarFactsAndListFilters()
    {
        St.Lora(Path.Combine(_w.Lora, "a.safetensors"), new Dictionary<string, string> { ["ss_base_model_version"] = "sd_v1" });
        St.Lora(Path.Combine(_w.Lora, "b.safetensors"), new Dictionary<string, string> { ["ss_base_model_version"] = "sdxl_base_v1-0" }, seed: 2);
        File.WriteAllText(Path.Combine(_w.Lora, "a.json"), """{"activation text": "red hat", "preferred weight": 0.7, "negative text": "blurry"}""");
        File.WriteAllText(Path.Combine(_w.Lora, "a.civitai.info"), """{"name": "v2", "baseModel": "SD 1.5", "trainedWords": ["redhat", "hat style"], "model": {"name": "Red Hats"}}""");
        File.WriteAllBytes(Path.Combine(_w.Lora, "a.preview.png"), [0x89, 0x50]);
        var c = _w.Catalog();
        using var doc = JsonDocument.Parse(LoraReports.FormatShowJson(LoraReports.Show(c, "a")));
        var o = doc.RootElement;
        Assert.Equal("red hat", o.GetProperty("activation_text").GetString());
        Assert.Equal(0.7, o.GetProperty("preferred_weight").GetDouble());
        Assert.Equal(["redhat", "hat style"], o.GetProperty("trained_words").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal("SD 1.5", o.GetProperty("base_model").GetString());
        Assert.Equal("Red Hats", o.GetProperty("civitai_model").GetString());
        Assert.EndsWith("a.preview.png", o.GetProperty("preview").GetString());

        Assert.Equal(["b"], LoraReports.List(c, BaseFamily.SDXL, null, false).Select(r => r.Name));
        Assert.Equal(["a"], LoraReports.List(c, BaseFamily.SD1, null, false).Select(r => r.Name));
        Assert.Equal(["a"], LoraReports.List(c, null, "HAT STYLE", false).Select(r => r.Name));
        Assert.Empty(LoraReports.List(c, BaseFamily.SDXL, "red", false));
        // The same facts come back from the index in another process.
        var again = _w.Catalog();
        Assert.Equal(["a"], LoraReports.List(again, null, "red hats", false).Select(r => r.Name));
        Assert.Equal("blurry", again.TryFind("a")!.User.NegativeText);
    }

    [Fact]
    public void EmptyFolderSaysSo()
    {
        var c = _w.Catalog();
        Assert.Contains("no LoRA files found in " + _w.Lora, LoraReports.FormatTable(LoraReports.List(c), c.Options.EffectiveLoraDirs));
        Assert.Contains("pass --webui-dir", LoraReports.FormatTable([], []));
        Assert.Equal("[]", LoraReports.FormatJson([]).Trim());
    }

    [Fact]
    public void ShowGivesMetadataSidecarAndTags()
    {
        St.Lora(Path.Combine(_w.Lora, "char.safetensors"), new Dictionary<string, string>
        {
            ["ss_output_name"] = "character", ["ss_network_dim"] = "4",
            ["ss_tag_frequency"] = """{"1_x": {"blue eyes": 10, "smile": 3}}""",
        });
        File.WriteAllText(Path.Combine(_w.Lora, "char.json"), """{"activation text": "chr_x", "preferred weight": 0.8}""");
        var c = _w.Catalog();

        var d = LoraReports.Show(c, "character");
        Assert.Equal("char", d.Row.Name);
        Assert.Equal([("blue eyes", 10), ("smile", 3)], d.Tags);
        Assert.Equal(c.HashOf(c.Find("char")), d.Hash);

        var text = LoraReports.FormatShow(d);
        Assert.Contains("chr_x", text);
        Assert.Contains("0.8", text);
        Assert.Contains("ss_network_dim", text);
        Assert.Contains("blue eyes", text);
        Assert.DoesNotContain("\"1_x\"", text); // the raw frequency blob is summarised, not dumped

        using var doc = JsonDocument.Parse(LoraReports.FormatShowJson(d));
        Assert.Equal("chr_x", doc.RootElement.GetProperty("activation_text").GetString());
        Assert.Equal(0.8, doc.RootElement.GetProperty("preferred_weight").GetDouble());
        Assert.Equal(10, doc.RootElement.GetProperty("tags")[0].GetProperty("count").GetInt32());

        var e = Assert.Throws<LoraNotFoundException>(() => LoraReports.Show(c, "charactr"));
        Assert.Contains("character", e.Suggestions);
    }
}
