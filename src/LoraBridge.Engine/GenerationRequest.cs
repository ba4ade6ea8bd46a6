using LoraBridge.Models;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>Everything one txt2img job needs; defaults are A1111's.</summary>
public sealed record GenerationRequest
{
    /// <summary>Positive prompt in the A1111 prompt language, LoRA tags included.</summary>
    public required string Prompt { get; init; }
    /// <summary>Negative prompt (A1111 keeps tags in it as text).</summary>
    public string NegativePrompt { get; init; } = "";
    /// <summary>Sampling steps.</summary>
    public int Steps { get; init; } = 20;
    /// <summary>A1111 sampler name.</summary>
    public string Sampler { get; init; } = "Euler a";
    /// <summary>A1111 schedule type.</summary>
    public string Schedule { get; init; } = "Automatic";
    /// <summary>Classifier-free guidance scale.</summary>
    public double CfgScale { get; init; } = 7.0;
    /// <summary>Seed; -1 picks one at random, as A1111 does.</summary>
    public long Seed { get; init; } = -1;
    /// <summary>Width in pixels (multiple of 8).</summary>
    public int Width { get; init; } = 512;
    /// <summary>Height in pixels (multiple of 8).</summary>
    public int Height { get; init; } = 512;
    /// <summary>Images per sampler run.</summary>
    public int BatchSize { get; init; } = 1;
    /// <summary>Sampler runs.</summary>
    public int BatchCount { get; init; } = 1;
    /// <summary>1 = last CLIP layer, 2 = penultimate (A1111's "Clip skip").</summary>
    public int ClipSkip { get; init; } = 1;
    /// <summary>A1111's random number source: GPU, CPU or NV.</summary>
    public string RandnSource { get; init; } = "GPU";
    /// <summary>A1111's eta noise seed delta.</summary>
    public long EtaNoiseSeedDelta { get; init; }
    /// <summary>Folder the PNG files go to.</summary>
    public required string OutputDir { get; init; }
    /// <summary>img2img from an init picture instead of txt2img; null for txt2img.</summary>
    public Img2ImgSettings? Img2Img { get; init; }
    /// <summary>Hires fix after the txt2img pass; null for none.</summary>
    public HiresSettings? Hires { get; init; }
}

/// <summary>The loaded checkpoint as the engine sees it.</summary>
/// <param name="Path">Checkpoint file.</param>
/// <param name="Name">Name written as "Model" in infotext (file stem).</param>
/// <param name="ShortHash">A1111's "Model hash" (10 hex characters), when known.</param>
/// <param name="Chunker">Tokenizer and A1111 chunking for this checkpoint's text encoder.</param>
/// <param name="Family">Base-model family, to warn about LoRAs made for another one.</param>
/// <param name="Embeddings">Textual-inversion embeddings for this checkpoint's text encoder (the chunker matches their
/// names); null: none.</param>
public sealed record CheckpointContext(string Path, string Name, string? ShortHash, PromptChunker Chunker, BaseFamily Family = BaseFamily.Unknown,
    EmbeddingDatabase? Embeddings = null);

/// <summary>A network file the prompt refers to, found in the catalog.</summary>
/// <param name="Name">The name as written in the prompt.</param>
/// <param name="Path">File path.</param>
/// <param name="Alias">Name written into "Lora hashes" (A1111 uses the alias).</param>
/// <param name="ShortHash">A1111's 12-character short hash, when known.</param>
public sealed record NetworkFile(string Name, string Path, string Alias, string? ShortHash);
