namespace VmmSharp.Fuzz;

/// <summary>Reading fuzz inputs and writing the seed corpus.</summary>
internal static class Corpus
{
    /// <summary>The largest input a target is given; afl-fuzz's own limit is 1 MiB.</summary>
    public const int MaxInput = 1 << 20;

    public static byte[] ReadAll(Stream stream)
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.Length > MaxInput ? buffer.GetBuffer().AsSpan(0, MaxInput).ToArray() : buffer.ToArray();
    }

    /// <summary>Writes each target's seeds to <paramref name="root"/>/NAME/, next to what the folder holds already.</summary>
    public static int WriteSeeds(string root)
    {
        foreach (IFuzzTarget target in FuzzTargets.All)
        {
            // Files already there stay: among them are the inputs of past findings, kept as regression tests.
            string dir = Path.Combine(root, target.Name);
            Directory.CreateDirectory(dir);
            int count = 0;
            foreach ((string name, byte[] data) in target.Seeds())
            {
                File.WriteAllBytes(Path.Combine(dir, name), data);
                count++;
            }
            Console.WriteLine($"{dir}: {count} seed(s)");
        }
        return 0;
    }
}
