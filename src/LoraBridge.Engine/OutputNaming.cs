using LoraBridge.Models;
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
        // 2147483647-x.png would overflow the counter to a negative number; saturate and let WriteNext refuse.
        return result == int.MaxValue ? int.MaxValue : result + 1;
    }

    /// <summary>File name for image number <paramref name="sequence"/> with <paramref name="seed"/>.</summary>
    public static string FileName(int sequence, long seed) =>
        $"{sequence.ToString("D5", CultureInfo.InvariantCulture)}-{seed.ToString(CultureInfo.InvariantCulture)}.png";

    /// <summary>
    /// Writes <paramref name="bytes"/> under the next free name without ever replacing a file: the bytes go to an
    /// exclusively created temporary file first and are moved in place only when complete (<see cref="AtomicFile"/>),
    /// so a crash never leaves half an image and a planted link is never written through.
    /// </summary>
    /// <returns>The path written.</returns>
    /// <exception cref="IOException">The numbers are exhausted (a file numbered 2147483647 exists) or the folder cannot be written.</exception>
    public static string WriteNext(string folder, long seed, ReadOnlySpan<byte> bytes)
    {
        int first = NextSequenceNumber(folder);
        return AtomicFile.CreateUnique(folder, attempt =>
        {
            long sequence = (long)first + attempt;
            // Another writer may take numbers between the scan and the move; the next ones are tried, up to int's end.
            if (sequence > int.MaxValue)
                throw new IOException($"{folder}: image numbers are exhausted (a file numbered {int.MaxValue} exists); choose another --out folder");
            return FileName((int)sequence, seed);
        }, bytes);
    }
}
