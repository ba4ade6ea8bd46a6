namespace LoraBridge.Tokenizers.Tests;

// Hand-computed against A1111 v1.10.1 tokenize_line. Synthetic ids: BOS 900, EOS 901, comma 5, words 1000+.
public class PromptChunkerTests
{
    private static readonly ChunkTokens Ids = new(900, 901, 5);

    private static (IReadOnlyList<int>, double, bool) Frag(double weight, params int[] ids) => (ids, weight, false);
    private static (IReadOnlyList<int>, double, bool) Break() => ([], -1, true);
    private static int[] Words(int start, int count) => Enumerable.Range(start, count).ToArray();

    private static void AssertChunk(PromptChunk chunk, int[] inner, double[]? innerWeights = null)
    {
        Assert.Equal(77, chunk.Ids.Length);
        Assert.Equal(77, chunk.Weights.Length);
        Assert.Equal(inner.Length, chunk.TokenCount);
        var expectedIds = new[] { 900 }.Concat(inner).Concat(Enumerable.Repeat(901, 76 - inner.Length)).ToArray();
        Assert.Equal(expectedIds, chunk.Ids);
        var w = innerWeights ?? Enumerable.Repeat(1.0, inner.Length).ToArray();
        Assert.Equal(new[] { 1.0 }.Concat(w).Concat(Enumerable.Repeat(1.0, 76 - inner.Length)).ToArray(), chunk.Weights);
    }

    [Fact]
    public void EmptyPromptGivesOnePaddedChunk()
    {
        var r = PromptChunker.ChunkIds([], Ids);
        Assert.Single(r.Chunks);
        AssertChunk(r.Chunks[0], []);
        Assert.Equal(0, r.TokenCount);
        var empty = PromptChunker.ChunkIds([Frag(1.0)], Ids);
        Assert.Single(empty.Chunks);
    }

    [Fact]
    public void SeventyFiveTokensFitOneChunkAndTheSeventySixthOpensAnother()
    {
        var one = PromptChunker.ChunkIds([Frag(1.0, Words(1000, 75))], Ids);
        Assert.Single(one.Chunks);
        AssertChunk(one.Chunks[0], Words(1000, 75));
        Assert.Equal(75, one.TokenCount);

        var two = PromptChunker.ChunkIds([Frag(1.0, Words(1000, 76))], Ids);
        Assert.Equal(2, two.Chunks.Count);
        AssertChunk(two.Chunks[0], Words(1000, 75));
        AssertChunk(two.Chunks[1], [1075]);
        Assert.Equal(76, two.TokenCount);
    }

    [Fact]
    public void CommaExactlyTwentyTokensBackMovesTheTailToTheNextChunk()
    {
        // 55 words, comma at index 55, 19 words fill the chunk to 75; the next word sees 75 - 55 = 20 <= 20.
        var input = Words(1000, 55).Append(5).Concat(Words(2000, 19)).Append(3000).ToArray();
        var r = PromptChunker.ChunkIds([Frag(1.0, input)], Ids);
        Assert.Equal(2, r.Chunks.Count);
        AssertChunk(r.Chunks[0], Words(1000, 55).Append(5).ToArray());
        AssertChunk(r.Chunks[1], Words(2000, 19).Append(3000).ToArray());
        Assert.Equal(75 + 20, r.TokenCount);
    }

    [Fact]
    public void CommaTwentyOneTokensBackDoesNotBacktrack()
    {
        var input = Words(1000, 54).Append(5).Concat(Words(2000, 20)).Append(3000).ToArray();
        var r = PromptChunker.ChunkIds([Frag(1.0, input)], Ids);
        Assert.Equal(2, r.Chunks.Count);
        AssertChunk(r.Chunks[0], input[..75]);
        AssertChunk(r.Chunks[1], [3000]);
    }

    [Fact]
    public void BacktrackWindowIsConfigurableAndZeroDisablesIt()
    {
        var input = Words(1000, 65).Append(5).Concat(Words(2000, 9)).Append(3000).ToArray();
        var off = PromptChunker.ChunkIds([Frag(1.0, input)], Ids, commaPaddingBacktrack: 0);
        AssertChunk(off.Chunks[0], input[..75]);
        var narrow = PromptChunker.ChunkIds([Frag(1.0, input)], Ids, commaPaddingBacktrack: 9);
        AssertChunk(narrow.Chunks[0], input[..75]);
        var wide = PromptChunker.ChunkIds([Frag(1.0, input)], Ids, commaPaddingBacktrack: 10);
        AssertChunk(wide.Chunks[0], input[..66]);
        AssertChunk(wide.Chunks[1], Words(2000, 9).Append(3000).ToArray());
    }

    [Fact]
    public void CommaAsSeventySixthTokenStartsTheNextChunk()
    {
        var input = Words(1000, 75).Append(5).Append(3000).ToArray();
        var r = PromptChunker.ChunkIds([Frag(1.0, input)], Ids);
        AssertChunk(r.Chunks[0], Words(1000, 75));
        AssertChunk(r.Chunks[1], [5, 3000]);
    }

    [Fact]
    public void BacktrackKeepsPerTokenWeightsOfMovedTokens()
    {
        var r = PromptChunker.ChunkIds(
            [Frag(1.0, Words(1000, 70)), Frag(1.0, 5), Frag(1.21, Words(2000, 4)), Frag(0.9, 3000)], Ids);
        AssertChunk(r.Chunks[0], Words(1000, 70).Append(5).ToArray());
        AssertChunk(r.Chunks[1], Words(2000, 4).Append(3000).ToArray(), [1.21, 1.21, 1.21, 1.21, 0.9]);
    }

    [Fact]
    public void BreakInMidChunkStartsANewChunk()
    {
        var r = PromptChunker.ChunkIds([Frag(1.1, 1000, 1001), Break(), Frag(0.5, 1002)], Ids);
        Assert.Equal(2, r.Chunks.Count);
        AssertChunk(r.Chunks[0], [1000, 1001], [1.1, 1.1]);
        AssertChunk(r.Chunks[1], [1002], [0.5]);
        Assert.Equal(75 + 1, r.TokenCount);
    }

    [Fact]
    public void BreakAtStartKeepsAnEmptyChunkButTrailingBreakAddsNone()
    {
        var lead = PromptChunker.ChunkIds([Break(), Frag(1.0, 1000)], Ids);
        Assert.Equal(2, lead.Chunks.Count);
        AssertChunk(lead.Chunks[0], []);
        var trail = PromptChunker.ChunkIds([Frag(1.0, 1000), Break()], Ids);
        Assert.Single(trail.Chunks);
        Assert.Equal(75, trail.TokenCount);
    }

    [Fact]
    public void BreakResetsTheCommaWindow()
    {
        // The comma at index 60 of the chunk before the BREAK would be within 20 of a full chunk if it were kept.
        var r = PromptChunker.ChunkIds([Frag(1.0, Words(1000, 60).Append(5).ToArray()), Break(), Frag(1.0, Words(2000, 76))], Ids);
        Assert.Equal(3, r.Chunks.Count);
        AssertChunk(r.Chunks[1], Words(2000, 75));
        AssertChunk(r.Chunks[2], [2075]);
    }

    [SharedFact]
    public void TokenizerBackedChunkingUsesVocabularyIds()
    {
        var chunker = new PromptChunker(ClipData.Clip);
        var r = chunker.Chunk([new("a photo of a ", 1.0), new("cat", 1.1), new("BREAK", -1), new("dog", 1.0)]);
        Assert.Equal(2, r.Chunks.Count);
        AssertWithClip(r.Chunks[0], [320, 1125, 539, 320, 2368], [1.0, 1.0, 1.0, 1.0, 1.1]);
        Assert.Equal(1929, r.Chunks[1].Ids[1]);
        // "BREAK" with any other weight is ordinary text.
        var text = chunker.Chunk([new("BREAK", 1.0)]);
        Assert.Single(text.Chunks);
        Assert.Equal(ClipData.Clip.Encode("BREAK"), text.Chunks[0].Ids[1..(1 + text.Chunks[0].TokenCount)]);
    }

    private static void AssertWithClip(PromptChunk chunk, int[] inner, double[] weights)
    {
        var clip = ClipData.Clip;
        Assert.Equal(new[] { clip.BosId }.Concat(inner).Concat(Enumerable.Repeat(clip.EosId, 76 - inner.Length)), chunk.Ids);
        Assert.Equal(new[] { 1.0 }.Concat(weights).Concat(Enumerable.Repeat(1.0, 76 - inner.Length)), chunk.Weights);
    }

    [SharedFact]
    public void NegativeBacktrackIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new PromptChunker(ClipData.Clip, -1));
}
