namespace LoraBridge.Tokenizers.Tests;

public class ConformanceTests
{
    [SharedFact]
    public void EveryPublicTokenLineMatchesOpenAiReference()
    {
        var records = ClipData.TokenRecords();
        Assert.True(records.Count >= 600, $"expected the public corpus, read {records.Count} lines");
        var failures = new List<string>();
        foreach (var r in records)
        {
            var ids = ClipData.Clip.Encode(r.Text);
            if (!ids.SequenceEqual(r.Ids))
                failures.Add($"line {r.Line} [{string.Join(",", r.Flags)}] {System.Text.Json.JsonSerializer.Serialize(r.Text)}: " +
                             $"expected [{string.Join(" ", r.Ids)}] got [{string.Join(" ", ids)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {records.Count} lines differ:\n" + string.Join("\n", failures.Take(25)));
    }

    [SharedFact]
    public void GzAndVocabJsonBuildIdenticalTokenizers()
    {
        var a = ClipData.Clip;
        var b = ClipData.ClipFromGz;
        Assert.Equal(a.VocabularySize, b.VocabularySize);
        Assert.Equal(a.MergeCount, b.MergeCount);
        Assert.Equal(49408, b.VocabularySize);
        foreach (var (token, id) in a.Vocabulary)
            Assert.True(b.Vocabulary.TryGetValue(token, out int other) && other == id, $"vocab entry {token} = {id} differs in the .gz build");
        Assert.Equal((a.BosId, a.EosId, a.CommaId), (b.BosId, b.EosId, b.CommaId));
        foreach (var r in ClipData.TokenRecords())
            Assert.Equal(a.Encode(r.Text), b.Encode(r.Text));
    }

    [SharedFact]
    public void SpecialIdsComeFromTheVocabulary()
    {
        Assert.Equal(49406, ClipData.Clip.BosId);
        Assert.Equal(49407, ClipData.Clip.EosId);
        Assert.Equal(267, ClipData.Clip.CommaId);
        Assert.Equal([320, 1125, 539, 320, 2368], ClipData.Clip.Encode("a photo of a cat"));
    }

    [SharedFact]
    public void FromDirectoryPrefersVocabJsonAndFallsBackToGz()
    {
        Assert.EndsWith("merges.txt", ClipTokenizer.FromDirectory(ClipData.ClipDir).Source);
        using var tmp = new TempDir();
        File.Copy(Path.Combine(ClipData.ClipDir, "bpe_simple_vocab_16e6.txt.gz"), Path.Combine(tmp.Path, "bpe_simple_vocab_16e6.txt.gz"));
        Assert.EndsWith(".gz", ClipTokenizer.FromDirectory(tmp.Path).Source);
        Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromDirectory(Path.Combine(tmp.Path, "missing")));
    }
}
