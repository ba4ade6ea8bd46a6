namespace LoraBridge.Tokenizers.Tests;

// A1111 v1.10.1 tokenize_line with textual-inversion embeddings, hand-computed. BOS 900, EOS 901, comma 5, words 1000+.
public class EmbeddingChunkingTests
{
    private static readonly ChunkTokens Ids = new(900, 901, 5);

    private static (IReadOnlyList<int>, double, bool) Frag(double weight, params int[] ids) => (ids, weight, false);
    private static int[] Words(int start, int count) => Enumerable.Range(start, count).ToArray();

    private static EmbeddingLookup Lookup(params (int[] Ids, string Name, int Vectors)[] entries)
    {
        var l = new EmbeddingLookup();
        foreach (var (ids, name, vectors) in entries) l.Register(ids, new TokenEmbedding(name, vectors));
        return l;
    }

    [Fact]
    public void LongestNameWinsThenRegistrationOrder()
    {
        var l = Lookup(([7, 8], "short", 1), ([7, 8, 9], "long", 2), ([7, 8, 9], "same-ids-later", 3));
        Assert.Equal("long", l.Find([7, 8, 9, 4], 0)!.Value.Embedding.Name);
        Assert.Equal(3, l.Find([7, 8, 9, 4], 0)!.Value.Length);
        Assert.Equal("short", l.Find([7, 8, 4], 0)!.Value.Embedding.Name);
        Assert.Null(l.Find([7, 4], 0));
        Assert.Null(l.Find([1, 7, 8], 0));
        Assert.Equal("short", l.Find([1, 7, 8], 1)!.Value.Embedding.Name); // a name cut off by the end still matches when complete
    }

    [Fact]
    public void RegisteringANameAgainReplacesItAndGoesLastAmongEquals()
    {
        var l = Lookup(([7, 8], "a", 1), ([7, 9], "b", 1));
        l.Register([7, 8], new TokenEmbedding("a", 4));
        var entries = l.Entries.Single().Entries;
        Assert.Equal(["b", "a"], entries.Select(e => e.Embedding.Name));
        Assert.Equal(4, l.Find([7, 8], 0)!.Value.Embedding.Vectors);
        Assert.Throws<ArgumentException>(() => l.Register([], new TokenEmbedding("empty", 1)));
    }

    [Fact]
    public void PlaceholdersAreZeroWithTheFragmentWeightAndAFix()
    {
        var l = Lookup(([7, 8], "emb", 3));
        var r = PromptChunker.ChunkIds([Frag(1.0, 1000), Frag(1.5, 7, 8, 1001)], Ids, embeddings: l);
        var c = Assert.Single(r.Chunks);
        Assert.Equal([900, 1000, 0, 0, 0, 1001, 901], c.Ids[..7]);
        Assert.Equal([1.0, 1.0, 1.5, 1.5, 1.5, 1.5, 1.0], c.Weights[..7]);
        var fix = Assert.Single(c.FixList);
        Assert.Equal((1, 2, "emb"), (fix.Offset, fix.Position, fix.Embedding.Name));
        Assert.Equal(5, r.TokenCount);
    }

    [Fact]
    public void NamesSplitAcrossFragmentsDoNotMatch()
    {
        var l = Lookup(([7, 8], "emb", 1));
        var r = PromptChunker.ChunkIds([Frag(1.1, 7), Frag(1.0, 8)], Ids, embeddings: l);
        Assert.Empty(r.Chunks[0].FixList);
        Assert.Equal([900, 7, 8, 901], r.Chunks[0].Ids[..4]);
    }

    [Fact]
    public void AnEmbeddingThatDoesNotFitClosesTheChunk()
    {
        var l = Lookup(([7], "emb", 4));
        var r = PromptChunker.ChunkIds([Frag(1.0, [.. Words(1000, 73), 7])], Ids, embeddings: l);
        Assert.Equal(2, r.Chunks.Count);
        Assert.Equal(75 + 4, r.TokenCount);
        Assert.Empty(r.Chunks[0].FixList);
        Assert.Equal(901, r.Chunks[0].Ids[74]); // two padding positions left, no comma backtracking
        Assert.Equal(0, Assert.Single(r.Chunks[1].FixList).Offset);
    }

    [Fact]
    public void CommaBacktrackingMovesPlaceholdersButLeavesTheFixBehind()
    {
        // 60 words, a comma, 10 words, the embedding (2 vectors) at offsets 71-72, 2 words: 75 tokens; one more word
        // triggers backtracking: tokens after the comma move, the fix stays at offset 71 of the first chunk.
        var l = Lookup(([7], "emb", 2));
        var input = Words(1000, 60).Append(5).Concat(Words(2000, 10)).Append(7).Concat(Words(3000, 3)).ToArray();
        var r = PromptChunker.ChunkIds([Frag(1.0, input)], Ids, embeddings: l);
        Assert.Equal(2, r.Chunks.Count);
        var first = r.Chunks[0];
        Assert.Equal(71, Assert.Single(first.FixList).Offset);
        Assert.Equal(901, first.Ids[72]); // padding under the fix
        var second = r.Chunks[1];
        Assert.Empty(second.FixList);
        Assert.Equal(Words(2000, 10).Concat([0, 0]).Concat(Words(3000, 3)), second.Ids[1..16]);
    }

    [Fact]
    public void WithoutALookupNothingChanges()
    {
        var input = Words(1000, 80);
        var plain = PromptChunker.ChunkIds([Frag(1.0, input)], Ids);
        var empty = PromptChunker.ChunkIds([Frag(1.0, input)], Ids, embeddings: new EmbeddingLookup());
        Assert.Equal(plain.Chunks.Select(c => c.Ids), empty.Chunks.Select(c => c.Ids));
    }
}
