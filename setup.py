"""Packaging for hpcm-balanced: everything is read from settings.ini (nbdev 2 layout)."""
from packaging.version import parse as parse_version
from configparser import ConfigParser
import setuptools, shlex

assert parse_version(setuptools.__version__) >= parse_version('36.2')

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = ('version description keywords author author_email license '
            'git_url lib_name min_python').split()
missing = [o for o in expected if o not in cfg]
assert not missing, f'settings.ini is missing: {missing}'

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
console_scripts = [s.strip() for s in cfg.get('console_scripts', '').split() if s.strip()]

setuptools.setup(
    name=cfg['repo'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    keywords=cfg['keywords'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    url=cfg['git_url'],
    license='MIT',
    project_urls={'Source': cfg['git_url']},
    classifiers=['Programming Language :: Python :: 3',
                 'Topic :: Scientific/Engineering :: Image Processing'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True,
    python_requires='>=' + cfg['min_python'],
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    entry_points={
        'console_scripts': console_scripts,
        'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
