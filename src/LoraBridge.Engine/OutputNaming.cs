using System.Globalization;

namespace LoraBridge.Engine;

/// <summary>A1111's output file names: <c>NNNNN-SEED.png</c>, numbering from the next free number in the folder.</summary>
public static class OutputNaming
{
    /// <summary>
    /// The next sequence number in <paramref name="folder"/>, as A1111's <c>get_next_sequence_number</c>:
    /// one more than the largest leading number of any file name, 0 for an empty or missing folder.
    /// </summary>
    public static int NextSequenceNumber(string folder)
    {
        if (!Directory.Exists(folder)) return 0;
        int result = -1;
        foreach (var path in Directory.EnumerateFileSystemEntries(folder))
        {
            var stem = Path.GetFileNameWithoutExtension(path).TrimStart('-');
            var first = stem.Split('-')[0];
            if (int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) result = Math.Max(result, n);
        }
        return result + 1;
    }

    /// <summary>File name for image number <paramref name="sequence"/> with <paramref name="seed"/>.</summary>
    public static string FileName(int sequence, long seed) =>
        $"{sequence.ToString("D5", CultureInfo.InvariantCulture)}-{seed.ToString(CultureInfo.InvariantCulture)}.png";

    /// <summary>
    /// Writes <paramref name="bytes"/> under the next free name without ever replacing a file: the bytes go to a
    /// temporary file first and are moved in place only when complete, so a crash never leaves half an image.
    /// </summary>
    /// <returns>The path written.</returns>
    public static string WriteNext(string folder, long seed, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".lorabridge-{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(temp, bytes.ToArray());
        try
        {
            for (int sequence = NextSequenceNumber(folder); ; sequence++)
            {
                var target = Path.Combine(folder, FileName(sequence, seed));
                try
                {
                    File.Move(temp, target, overwrite: false);
                    return target;
                }
                catch (IOException) when (File.Exists(target))
                {
                    // Another writer took this number between the scan and the move: try the next one.
                }
            }
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
