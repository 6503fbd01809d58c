System.Console.WriteLine("vmm");
