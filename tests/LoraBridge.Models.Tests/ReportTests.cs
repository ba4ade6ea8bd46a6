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

        var noHash = LoraReports.List(c, withHashes: false);
        Assert.Null(noHash[0].ShortHash);
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
