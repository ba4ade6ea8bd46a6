namespace LoraBridge.Models;

/// <summary>
/// How LoraBridge writes every file it creates (images, manifests, grids, caches): the bytes go to a new, uniquely
/// named temporary file in the target folder, created exclusively (an existing file or a symlink planted at that
/// name makes the create fail instead of writing through it), and the complete file is then moved into place.
/// A reader never sees half a file, a crash leaves at most a hidden <c>.lorabridge-*.tmp</c>, and nothing outside
/// the folder is ever written, whatever links the folder holds.
/// </summary>
public static class AtomicFile
{
    /// <summary>How many names <see cref="CreateUnique"/> tries before giving up.</summary>
    public const int MaxAttempts = 10_000;

    /// <summary>
    /// Writes <paramref name="bytes"/> under the first free name <paramref name="nameFor"/>(0), (1), … in
    /// <paramref name="folder"/>, never replacing anything that exists there (a dangling symlink included).
    /// </summary>
    /// <returns>The path written.</returns>
    /// <exception cref="IOException">The folder cannot be written, or no free name among <see cref="MaxAttempts"/>.</exception>
    public static string CreateUnique(string folder, Func<int, string> nameFor, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(folder);
        var temp = WriteTemp(folder, bytes);
        try
        {
            for (int attempt = 0; attempt < MaxAttempts; attempt++)
            {
                var target = Path.Combine(folder, nameFor(attempt));
                try
                {
                    // Without overwrite, the move fails when anything (a file, a link, a dangling link) has the name.
                    File.Move(temp, target, overwrite: false);
                    return target;
                }
                catch (IOException) when (Exists(target))
                {
                    // Taken (by an earlier run, another process, or a planted link): try the next name.
                }
            }
            throw new IOException($"{folder}: no free file name after {MaxAttempts} attempts (last tried {nameFor(MaxAttempts - 1)})");
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="bytes"/> atomically (for caches the program owns): a symlink
    /// at <paramref name="path"/> is replaced by the new file, its target is never written.
    /// </summary>
    public static void Replace(string path, ReadOnlySpan<byte> bytes)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        var temp = WriteTemp(folder, bytes);
        try
        {
            File.Move(temp, path, overwrite: true); // rename(2): replaces the directory entry, link or not
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Creates a new hidden temporary file in <paramref name="folder"/> exclusively and writes the bytes.</summary>
    public static string WriteTemp(string folder, ReadOnlySpan<byte> bytes)
    {
        var temp = Path.Combine(folder, $".lorabridge-{Guid.NewGuid():N}.tmp");
        using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            stream.Write(bytes);
        return temp;
    }

    // True when the name is taken, by a file, a folder or a link (even one pointing nowhere).
    private static bool Exists(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;
}
