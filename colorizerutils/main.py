"""The README's main job (`make run`). For now: build the default dataset and say what it holds."""
import colorizerutils as cu


def main():
    data = cu.load_image_dataset()
    print(data.describe())


if __name__ == "__main__":
    main()
