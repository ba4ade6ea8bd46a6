using LoraBridge.Prompting;

namespace LoraBridge.Prompting.Tests;

public sealed class BlockWeightTests
{
    private static PromptResult<IReadOnlyList<LoraBlockWeights>> Read(string prompt, LbwPresets? presets = null) =>
        BlockWeightReader.Read(prompt, presets ?? LbwPresets.Default);

    [Fact]
    public void PresetAndExplicitListsAreRead()
    {
        var r = Read("a <lora:x:1:lbw=MIDD> b <lora:y:0.5:lbw=" + string.Join(',', Enumerable.Range(0, 26)) + ">");
        Assert.True(r.IsOk, r.Error?.Message);
        Assert.Equal(["x", "y"], r.Value!.Select(b => b.Name));
        Assert.Equal(17, r.Value![0].Weights.Count);
        Assert.Equal([1.0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], r.Value![0].Weights);
        Assert.Equal(25.0, r.Value![1].Weights[25]);
    }

    [Fact]
    public void TagsWithoutBlockWeightsAreNotRead()
    {
        var r = Read("a <lora:x:te=0.5:0.8> <lora:y:1>");
        Assert.True(r.IsOk);
        Assert.Empty(r.Value!);
    }

    [Theory]
    [InlineData("a <lora:x:1:lbw=NOSUCH>", 12, "unknown block-weight preset 'NOSUCH'")]
    [InlineData("a <lora:x:1:lbw=1,1,1>", 12, "3 block weights")]
    [InlineData("ab <lora:x:1:lbw=1,1,1,1,1,1,1,1,1,1,1,R>", 13, "not reproducible")]
    [InlineData("<lora:x:1:lbwe=NOPE>", 10, "unknown elemental preset 'NOPE'")]
    [InlineData("<lora:x:1:1:lbw=X,1,1,1,1,1,1,1,1,1,1,1>", 12, "X needs x=")]
    [InlineData("<lora:x:1:lbw=MIDD:step=1-3>", 19, "step= is not supported")]
    public void BadValuesAreErrorsAtTheItem(string prompt, int position, string message)
    {
        var r = Read(prompt);
        Assert.False(r.IsOk);
        Assert.Equal(position, r.Error!.Position);
        Assert.Contains(message, r.Error.Message);
    }

    [Fact]
    public void AmbiguousMultipliersAreAnError()
    {
        // A1111: te 0.5, unet 0.5; LBW: te 0.5, unet 0.8.
        var r = Read("<lora:x:te=0.5:0.8:lbw=ALL>");
        Assert.False(r.IsOk);
        Assert.Contains("ambiguous", r.Error!.Message);
        Assert.True(Read("<lora:x:te=0.5:unet=0.8:lbw=ALL>").IsOk);
        Assert.True(Read("<lora:x:0.5:0.8:lbw=ALL>").IsOk);
    }

    [Fact]
    public void XTakesTheBaseFromXEquals()
    {
        var r = Read("<lora:x:1:1:x=0.5:lbw=X+0.25,X-0.5,X,1,1,1,1,1,1,1,1,1>");
        Assert.True(r.IsOk, r.Error?.Message);
        Assert.Equal([0.75, 0.0, 0.5], r.Value![0].Weights.Take(3));
    }

    [Fact]
    public void UserPresetsAddToTheDefaultsAndBadLinesAreSkipped()
    {
        var presets = LbwPresets.Create("MINE:0,1,0,1,0,1,0,1,0,1,0,1\n# COMMENTED:1,1,1,1,1,1,1,1,1,1,1,1\nSHORT:1,2", "E:IN05:attn:0");
        Assert.Equal(12, Read("<lora:x:1:lbw=MINE>", presets).Value![0].Weights.Count);
        Assert.False(Read("<lora:x:1:lbw=COMMENTED>", presets).IsOk);
        Assert.False(Read("<lora:x:1:lbw=SHORT>", presets).IsOk);
        Assert.Equal("IN05:attn:0", Read("<lora:x:1:lbwe=E>", presets).Value![0].Elemental);
        Assert.True(Read("<lora:x:1:lbw=MIDD>", presets).IsOk);
    }

    [Fact]
    public void FirstTagOfARepeatedNetworkWins()
    {
        var r = Read("<lora:x:1:lbw=MIDD> <lora:x:1:lbw=OUTD>");
        Assert.Equal(LbwPresets.Default.Weights["MIDD"].Split(',').Select(double.Parse), Assert.Single(r.Value!).Weights);
    }
}
