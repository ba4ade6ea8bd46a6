namespace LoraBridge.Tokenizers.Tests;

public sealed class OpenClipChunksTests
{
    [Fact]
    public void EveryPositionAfterTheFirstEndTokenBecomesZeroAndTheInputStays()
    {
        int[] ids = [49406, 320, 49407, 49407, 49407];
        Assert.Equal([49406, 320, 49407, 0, 0], OpenClipChunks.PadAfterEnd(ids, 49407));
        Assert.Equal([49406, 320, 49407, 49407, 49407], ids);
    }

    [Fact]
    public void AFullChunkEndingInTheEndTokenIsUnchangedAndAnEarlierEndTokenWins()
    {
        Assert.Equal([1, 2, 3, 9], OpenClipChunks.PadAfterEnd([1, 2, 3, 9], 9));
        // A prompt that spells <|endoftext|> puts the end id early; A1111's list.index finds that one.
        Assert.Equal([1, 9, 0, 0], OpenClipChunks.PadAfterEnd([1, 9, 5, 9], 9));
        Assert.Equal([1, 9, 7, 7], OpenClipChunks.PadAfterEnd([1, 9, 5, 9], 9, padId: 7));
    }

    [Fact]
    public void AChunkWithoutAnEndTokenIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => OpenClipChunks.PadAfterEnd([1, 2, 3], 9));
        Assert.Contains("no end token (9)", e.Message);
    }
}
