using System.Collections.Concurrent;

namespace LoraBridge.Tui;

/// <summary>A decoded preview thumbnail, or why there is none.</summary>
/// <param name="Image">The picture (at most the cache's size on each side); null when it could not be read.</param>
/// <param name="Error">Why the file could not be shown (names the file); null when <paramref name="Image"/> is set.</param>
public sealed record Thumbnail(RgbImage? Image, string? Error);

/// <summary>
/// Decodes LoRA preview images (A1111's <c>name.preview.png</c> and friends) off the UI thread, small, once: a result is
/// kept per path, modification time and length, so moving up and down the list never decodes a file twice and an
/// edited preview is decoded again. Failures are results too (a corrupt file is not retried until it changes).
/// </summary>
public sealed class ThumbnailCache
{
    private readonly ConcurrentDictionary<(string Path, DateTime Modified, long Length), Task<Thumbnail>> _entries = new();
    private readonly Func<Func<Thumbnail>, Task<Thumbnail>> _run;

    /// <summary>Creates a cache of thumbnails at most <paramref name="maxSide"/> pixels on each side.</summary>
    /// <param name="maxSide">Longest side of a decoded thumbnail (enough for a half-block card and a small raster image).</param>
    /// <param name="capacity">Thumbnails kept; past it the cache starts again empty (a LoRA folder rarely has more previews than this).</param>
    /// <param name="run">Runs a decode and returns its task; null: on the thread pool (<see cref="Task.Run{TResult}(Func{TResult})"/>).
    /// Tests pass one that waits for them, to see the card while a decode is under way.</param>
    public ThumbnailCache(int maxSide = 160, int capacity = 256, Func<Func<Thumbnail>, Task<Thumbnail>>? run = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSide, 1);
        _run = run ?? Task.Run;
        MaxSide = maxSide;
        Capacity = capacity;
    }

    /// <summary>Longest side of a thumbnail, in pixels.</summary>
    public int MaxSide { get; }

    /// <summary>Thumbnails kept before the cache is emptied.</summary>
    public int Capacity { get; }

    /// <summary>Files decoded so far (tests check that a second look does not decode again).</summary>
    public int Decodes => Volatile.Read(ref _decodes);
    private int _decodes;

    /// <summary>
    /// The thumbnail of <paramref name="path"/>: a finished task when it was decoded before (and the file is unchanged),
    /// else one that decodes on the thread pool. Never faults: unreadable files give <see cref="Thumbnail.Error"/>.
    /// </summary>
    public Task<Thumbnail> LoadAsync(string path)
    {
        FileInfo file;
        try
        {
            file = new FileInfo(path);
            if (!file.Exists) return Task.FromResult(new Thumbnail(null, $"preview {path} is gone"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return Task.FromResult(new Thumbnail(null, $"cannot read preview {path}: {ex.Message}"));
        }
        var key = (file.FullName, file.LastWriteTimeUtc, file.Length);
        if (_entries.TryGetValue(key, out var known)) return known;
        if (_entries.Count >= Capacity) _entries.Clear();
        return _entries.GetOrAdd(key, k => _run(() => Decode(k.Path)));
    }

    private Thumbnail Decode(string path)
    {
        Interlocked.Increment(ref _decodes);
        try
        {
            return new Thumbnail(RgbImage.LoadThumbnail(path, MaxSide), null);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            // InvalidDataException messages already start with the path.
            return new Thumbnail(null, ex is InvalidDataException ? "cannot show preview " + ex.Message : $"cannot read preview {path}: {ex.Message}");
        }
    }
}
