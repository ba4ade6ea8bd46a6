namespace LoraBridge.Tokenizers;

/// <summary>One text fragment with its emphasis weight, as A1111's <c>parse_prompt_attention</c> returns them.</summary>
/// <param name="Text">The fragment text. With <paramref name="Weight"/> exactly -1 and text "BREAK" it is a chunk break.</param>
/// <param name="Weight">The emphasis multiplier applied to every token of the fragment.</param>
public readonly record struct WeightedText(string Text, double Weight)
{
    /// <summary>True for A1111's BREAK marker: text "BREAK" and weight exactly -1.</summary>
    public bool IsBreak => Weight == -1 && Text == "BREAK";
}

/// <summary>
/// A textual-inversion embedding placed in a chunk (A1111's <c>PromptChunkFix</c>): its vectors overwrite the token
/// embeddings from position <see cref="Position"/> on.
/// </summary>
/// <param name="Offset">Index among the chunk's tokens without BOS (A1111's offset); the 77-token position is Offset + 1.</param>
/// <param name="Embedding">The embedding.</param>
public sealed record ChunkFix(int Offset, TokenEmbedding Embedding)
{
    /// <summary>Position in the 77 ids (after BOS) where the first vector goes.</summary>
    public int Position => Offset + 1;
}

/// <summary>One 77-token CLIP input: BOS, 75 tokens (real ones then EOS padding), EOS.</summary>
/// <param name="Ids">77 token ids (more only when an embedding of over 75 vectors was placed, as A1111 allows).</param>
/// <param name="Weights">77 emphasis multipliers; 1.0 on BOS, EOS and padding.</param>
/// <param name="TokenCount">How many of the 75 inner positions hold prompt tokens (the rest is padding).</param>
/// <param name="Fixes">Embeddings placed in this chunk, in prompt order (placeholders are token 0); null: none.</param>
public sealed record PromptChunk(int[] Ids, double[] Weights, int TokenCount, IReadOnlyList<ChunkFix>? Fixes = null)
{
    /// <summary>The fixes, never null.</summary>
    public IReadOnlyList<ChunkFix> FixList => Fixes ?? [];
}

/// <summary>A prompt split into CLIP chunks.</summary>
/// <param name="Chunks">At least one chunk.</param>
/// <param name="TokenCount">
/// A1111's token count for the prompt: 75 for every chunk closed before the last, plus the real tokens of the last.
/// </param>
public sealed record ChunkedPrompt(IReadOnlyList<PromptChunk> Chunks, int TokenCount);

/// <summary>Ids the chunker needs from a vocabulary.</summary>
/// <param name="BosId">Start-of-text id.</param>
/// <param name="EosId">End-of-text id, also used for padding (SD 1.x).</param>
/// <param name="CommaId">Id of <c>,&lt;/w&gt;</c>; null disables comma backtracking.</param>
public readonly record struct ChunkTokens(int BosId, int EosId, int? CommaId);

/// <summary>
/// A1111 v1.10.1's prompt chunking (<c>FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line</c>): 75 tokens per
/// chunk, BREAK starts a new chunk, comma backtracking, per-token weights, BOS + 75 + EOS with EOS padding, and
/// textual-inversion embeddings matched on token ids inside each fragment (see <see cref="EmbeddingLookup"/>).
/// </summary>
public sealed class PromptChunker
{
    /// <summary>Tokens per chunk between BOS and EOS.</summary>
    public const int ChunkLength = 75;

    /// <summary>A1111's default for <c>opts.comma_padding_backtrack</c>.</summary>
    public const int DefaultCommaPaddingBacktrack = 20;

    private readonly ClipTokenizer _tokenizer;
    private readonly int _commaPaddingBacktrack;

    /// <summary>Creates a chunker over <paramref name="tokenizer"/>.</summary>
    /// <param name="tokenizer">Tokenizer for the fragment texts; BOS, EOS and comma ids come from its vocabulary.</param>
    /// <param name="commaPaddingBacktrack">A1111's <c>comma_padding_backtrack</c>; 0 turns backtracking off.</param>
    /// <param name="embeddings">Textual-inversion embeddings to find in prompts; null: none.</param>
    public PromptChunker(ClipTokenizer tokenizer, int commaPaddingBacktrack = DefaultCommaPaddingBacktrack, EmbeddingLookup? embeddings = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(commaPaddingBacktrack);
        _tokenizer = tokenizer;
        _commaPaddingBacktrack = commaPaddingBacktrack;
        Embeddings = embeddings;
    }

    /// <summary>The tokenizer the fragments go through.</summary>
    public ClipTokenizer Tokenizer => _tokenizer;

    /// <summary>Embeddings matched in prompts, or null.</summary>
    public EmbeddingLookup? Embeddings { get; }

    /// <summary>The same chunker with another set of embeddings.</summary>
    public PromptChunker WithEmbeddings(EmbeddingLookup? embeddings) => new(_tokenizer, _commaPaddingBacktrack, embeddings);

    /// <summary>
    /// A1111's <c>empty_chunk</c>: BOS, then EOS for the other 76 positions, every weight 1. A1111 pads the shorter
    /// texts of a batch with it, so texts encoded together have the same chunk count.
    /// </summary>
    public PromptChunk EmptyChunk()
    {
        var ids = new int[ChunkLength + 2];
        Array.Fill(ids, _tokenizer.EosId);
        ids[0] = _tokenizer.BosId;
        var weights = new double[ChunkLength + 2];
        Array.Fill(weights, 1.0);
        return new PromptChunk(ids, weights, 0);
    }

    /// <summary>Tokenizes each fragment and chunks the result.</summary>
    public ChunkedPrompt Chunk(IReadOnlyList<WeightedText> fragments)
    {
        var tokenized = new List<(IReadOnlyList<int> Ids, double Weight, bool IsBreak)>(fragments.Count);
        foreach (var f in fragments)
            tokenized.Add(f.IsBreak ? ([], f.Weight, true) : (_tokenizer.Encode(f.Text), f.Weight, false));
        var ids = new ChunkTokens(_tokenizer.BosId, _tokenizer.EosId, _tokenizer.CommaId);
        return ChunkIds(tokenized, ids, _commaPaddingBacktrack, Embeddings);
    }

    /// <summary>Chunks already tokenized fragments (ids without BOS/EOS).</summary>
    /// <param name="fragments">Token ids and weight per fragment; <c>IsBreak</c> marks a BREAK.</param>
    /// <param name="special">BOS, EOS and comma ids.</param>
    /// <param name="commaPaddingBacktrack">A1111's <c>comma_padding_backtrack</c>; 0 turns backtracking off.</param>
    /// <param name="embeddings">Embeddings to find inside each fragment; null: none.</param>
    public static ChunkedPrompt ChunkIds(
        IEnumerable<(IReadOnlyList<int> Ids, double Weight, bool IsBreak)> fragments,
        ChunkTokens special,
        int commaPaddingBacktrack = DefaultCommaPaddingBacktrack,
        EmbeddingLookup? embeddings = null)
    {
        if (embeddings is { IsEmpty: true }) embeddings = null;
        var chunks = new List<PromptChunk>();
        var tokens = new List<int>(ChunkLength);
        var weights = new List<double>(ChunkLength);
        var fixes = new List<ChunkFix>();
        int tokenCount = 0;
        int lastComma = -1;

        void NextChunk(bool isLast)
        {
            int real = tokens.Count;
            tokenCount += isLast ? real : ChunkLength;
            // A chunk holds more than 75 tokens only when A1111 put a longer embedding into it; it is not cut.
            int inner = Math.Max(ChunkLength, real);
            var ids = new int[inner + 2];
            var w = new double[inner + 2];
            Array.Fill(ids, special.EosId);
            Array.Fill(w, 1.0);
            ids[0] = special.BosId;
            tokens.CopyTo(ids, 1);
            weights.CopyTo(w, 1);
            chunks.Add(new PromptChunk(ids, w, Math.Min(real, ChunkLength), fixes.Count > 0 ? fixes.ToArray() : null));
            tokens.Clear();
            weights.Clear();
            fixes.Clear();
            lastComma = -1;
        }

        foreach (var (fragmentIds, weight, isBreak) in fragments)
        {
            if (isBreak)
            {
                NextChunk(isLast: false);
                continue;
            }
            int position = 0;
            while (position < fragmentIds.Count)
            {
                int token = fragmentIds[position];
                if (token == special.CommaId)
                {
                    lastComma = tokens.Count;
                }
                else if (commaPaddingBacktrack != 0 && tokens.Count == ChunkLength && lastComma != -1
                         && tokens.Count - lastComma <= commaPaddingBacktrack)
                {
                    // The chunk is full and a comma is near its end: close the chunk after the comma and carry the
                    // words after it into the next chunk, so a phrase is not cut in half. As in A1111, embedding
                    // fixes stay with the closed chunk (their vectors land on its padding) and the carried
                    // placeholders arrive in the new chunk as plain token 0.
                    int breakAt = lastComma + 1;
                    var movedIds = tokens.GetRange(breakAt, tokens.Count - breakAt);
                    var movedWeights = weights.GetRange(breakAt, weights.Count - breakAt);
                    tokens.RemoveRange(breakAt, tokens.Count - breakAt);
                    weights.RemoveRange(breakAt, weights.Count - breakAt);
                    NextChunk(isLast: false);
                    tokens.AddRange(movedIds);
                    weights.AddRange(movedWeights);
                }

                if (tokens.Count == ChunkLength) NextChunk(isLast: false);

                var found = embeddings?.Find(fragmentIds, position);
                if (found is not { } match)
                {
                    tokens.Add(token);
                    weights.Add(weight);
                    position++;
                    continue;
                }

                // An embedding never straddles two chunks: when its vectors do not fit, the chunk is closed here.
                int vectors = match.Embedding.Vectors;
                if (tokens.Count + vectors > ChunkLength) NextChunk(isLast: false);
                fixes.Add(new ChunkFix(tokens.Count, match.Embedding));
                for (int k = 0; k < vectors; k++)
                {
                    tokens.Add(0);
                    weights.Add(weight);
                }
                position += match.Length;
            }
        }

        if (tokens.Count > 0 || chunks.Count == 0) NextChunk(isLast: true);
        return new ChunkedPrompt(chunks, tokenCount);
    }
}
